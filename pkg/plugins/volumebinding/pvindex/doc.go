// Package pvindex keeps the cluster's PersistentVolumes indexed by the nodes
// they can be used from, so the scheduler's Filter reads the handful of
// volumes that live on a node instead of scanning every volume of a class for
// every node (what the in-tree VolumeBinding plugin does).
//
// A volume is "pinned" when every term of its required NodeAffinity selects
// nodes by kubernetes.io/hostname with operator In; it is then listed under
// each of those hostname values. Node objects map hostname label values to
// node names, which may differ (kubernetes#125336). Volumes with any other
// affinity, or none, are listed per StorageClass and checked against each
// node's labels as usual; they are network volumes and usually few.
//
// The index also overlays "assumed" volumes: the scheduler's Reserve records
// that a volume is promised to a claim before the API write happens, so a
// parallel scheduling cycle cannot pick it. An informer update that carries a
// newer version of the volume replaces the assumed copy.
package pvindex
