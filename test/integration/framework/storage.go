package framework

import (
	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// NoProvisioner is the provisioner of StorageClasses for pre-created
// (static) local volumes.
const NoProvisioner = "kubernetes.io/no-provisioner"

// Claim annotations set by the scheduler and the PV controller.
const (
	// AnnSelectedNode is set on a WaitForFirstConsumer claim by the
	// scheduler to ask for provisioning on that node.
	AnnSelectedNode = "volume.kubernetes.io/selected-node"
	// AnnStorageProvisioner is set on a claim by the PV controller when an
	// out-of-tree provisioner should provision it.
	AnnStorageProvisioner = "volume.kubernetes.io/storage-provisioner"
	// AnnProvisionedBy is set on a PV by the provisioner that made it.
	AnnProvisionedBy = "pv.kubernetes.io/provisioned-by"
)

// LocalPVOptions describe a local PersistentVolume pinned to one node.
type LocalPVOptions struct {
	// Name of the PV (required; use Env.Name for uniqueness).
	Name string
	// Hostname is the kubernetes.io/hostname value of the node the volume
	// lives on (required; see Hostname(node)).
	Hostname string
	// Path is spec.local.path. Default "/mnt/disks/<Name>".
	Path string
	// Capacity. Default "10Gi".
	Capacity string
	// AccessModes. Default ReadWriteOnce.
	AccessModes []v1.PersistentVolumeAccessMode
	// VolumeMode. Default (nil) is Filesystem.
	VolumeMode *v1.PersistentVolumeMode
	// StorageClass is spec.storageClassName.
	StorageClass string
	// ReclaimPolicy. Default Retain (what local volumes normally use).
	ReclaimPolicy v1.PersistentVolumeReclaimPolicy
	// ClaimRef pre-binds the volume to a claim.
	ClaimRef *v1.ObjectReference
	// Labels and Annotations of the PV.
	Labels, Annotations map[string]string
	// Mutate, if set, edits the object last.
	Mutate func(*v1.PersistentVolume)
}

// MakeLocalPV builds a local PV with required NodeAffinity
// kubernetes.io/hostname In [Hostname].
func MakeLocalPV(o LocalPVOptions) *v1.PersistentVolume {
	path := o.Path
	if path == "" {
		path = "/mnt/disks/" + o.Name
	}
	accessModes := o.AccessModes
	if len(accessModes) == 0 {
		accessModes = []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}
	}
	reclaim := o.ReclaimPolicy
	if reclaim == "" {
		reclaim = v1.PersistentVolumeReclaimRetain
	}
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Labels: copyMap(o.Labels), Annotations: copyMap(o.Annotations)},
		Spec: v1.PersistentVolumeSpec{
			Capacity:                      v1.ResourceList{v1.ResourceStorage: resource.MustParse(orDefault(o.Capacity, "10Gi"))},
			AccessModes:                   accessModes,
			VolumeMode:                    o.VolumeMode,
			StorageClassName:              o.StorageClass,
			PersistentVolumeReclaimPolicy: reclaim,
			ClaimRef:                      o.ClaimRef,
			PersistentVolumeSource: v1.PersistentVolumeSource{
				Local: &v1.LocalVolumeSource{Path: path},
			},
			NodeAffinity: HostnameAffinity(o.Hostname),
		},
	}
	if o.Mutate != nil {
		o.Mutate(pv)
	}
	return pv
}

// HostnameAffinity is a PV NodeAffinity requiring kubernetes.io/hostname In
// [hostname].
func HostnameAffinity(hostname string) *v1.VolumeNodeAffinity {
	return TopologyAffinity(v1.LabelHostname, hostname)
}

// TopologyAffinity is a PV NodeAffinity requiring key In [value].
func TopologyAffinity(key, value string) *v1.VolumeNodeAffinity {
	return &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
		MatchExpressions: []v1.NodeSelectorRequirement{{Key: key, Operator: v1.NodeSelectorOpIn, Values: []string{value}}},
	}}}}
}

// CreateLocalPV creates a local PV (see MakeLocalPV), labelled for cleanup.
func (e *Env) CreateLocalPV(o LocalPVOptions) *v1.PersistentVolume {
	e.T.Helper()
	require.NotEmpty(e.T, o.Name, "LocalPVOptions.Name")
	require.NotEmpty(e.T, o.Hostname, "LocalPVOptions.Hostname")
	pv := MakeLocalPV(o)
	pv.Labels = withLabel(pv.Labels, EnvLabel, e.ID)
	created, err := e.Client.CoreV1().PersistentVolumes().Create(e.Ctx, pv, metav1.CreateOptions{})
	require.NoError(e.T, err, "creating PV %s", o.Name)
	return created
}

// StorageClassOptions describe a StorageClass.
type StorageClassOptions struct {
	// Name (required; use Env.Name for uniqueness).
	Name string
	// Provisioner. Default NoProvisioner.
	Provisioner string
	// BindingMode. Default WaitForFirstConsumer.
	BindingMode storagev1.VolumeBindingMode
	// ReclaimPolicy of provisioned volumes (nil: Delete).
	ReclaimPolicy *v1.PersistentVolumeReclaimPolicy
	// Annotations, Labels and Parameters of the class. Do not set the
	// is-default-class annotation on a shared control plane: the
	// DefaultStorageClass admission plugin would give the class to every
	// claim without one, in every test.
	Annotations, Labels, Parameters map[string]string
	AllowedTopologies               []v1.TopologySelectorTerm
	AllowVolumeExpansion            bool
	// Mutate, if set, edits the object last.
	Mutate func(*storagev1.StorageClass)
}

// MakeStorageClass builds a StorageClass.
func MakeStorageClass(o StorageClassOptions) *storagev1.StorageClass {
	mode := o.BindingMode
	if mode == "" {
		mode = storagev1.VolumeBindingWaitForFirstConsumer
	}
	sc := &storagev1.StorageClass{
		ObjectMeta:           metav1.ObjectMeta{Name: o.Name, Labels: copyMap(o.Labels), Annotations: copyMap(o.Annotations)},
		Provisioner:          orDefault(o.Provisioner, NoProvisioner),
		VolumeBindingMode:    &mode,
		ReclaimPolicy:        o.ReclaimPolicy,
		Parameters:           o.Parameters,
		AllowedTopologies:    o.AllowedTopologies,
		AllowVolumeExpansion: ptr.To(o.AllowVolumeExpansion),
	}
	if o.Mutate != nil {
		o.Mutate(sc)
	}
	return sc
}

// CreateStorageClass creates a StorageClass (see MakeStorageClass), labelled
// for cleanup.
func (e *Env) CreateStorageClass(o StorageClassOptions) *storagev1.StorageClass {
	e.T.Helper()
	require.NotEmpty(e.T, o.Name, "StorageClassOptions.Name")
	sc := MakeStorageClass(o)
	sc.Labels = withLabel(sc.Labels, EnvLabel, e.ID)
	created, err := e.Client.StorageV1().StorageClasses().Create(e.Ctx, sc, metav1.CreateOptions{})
	require.NoError(e.T, err, "creating StorageClass %s", o.Name)
	return created
}

// PVCOptions describe a PersistentVolumeClaim (also a StatefulSet's
// volumeClaimTemplate or a generic ephemeral volume's template).
type PVCOptions struct {
	// Name of the claim (required; for templates, the template name).
	Name string
	// StorageClass is spec.storageClassName; empty leaves it unset.
	StorageClass string
	// Request is the storage request. Default "1Gi".
	Request string
	// AccessModes. Default ReadWriteOnce.
	AccessModes []v1.PersistentVolumeAccessMode
	// VolumeMode. Default (nil) is Filesystem.
	VolumeMode *v1.PersistentVolumeMode
	// Selector restricts the volumes the claim may bind to.
	Selector *metav1.LabelSelector
	// VolumeName pre-binds the claim to a volume.
	VolumeName string
	// Labels and Annotations of the claim.
	Labels, Annotations map[string]string
	// Mutate, if set, edits the object last.
	Mutate func(*v1.PersistentVolumeClaim)
}

// MakePVC builds a claim in namespace.
func MakePVC(namespace string, o PVCOptions) *v1.PersistentVolumeClaim {
	pvc := &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Namespace: namespace, Labels: copyMap(o.Labels), Annotations: copyMap(o.Annotations)},
		Spec:       pvcSpec(o),
	}
	if o.Mutate != nil {
		o.Mutate(pvc)
	}
	return pvc
}

func pvcSpec(o PVCOptions) v1.PersistentVolumeClaimSpec {
	accessModes := o.AccessModes
	if len(accessModes) == 0 {
		accessModes = []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}
	}
	spec := v1.PersistentVolumeClaimSpec{
		AccessModes: accessModes,
		Resources: v1.VolumeResourceRequirements{
			Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse(orDefault(o.Request, "1Gi"))},
		},
		VolumeMode: o.VolumeMode,
		Selector:   o.Selector,
		VolumeName: o.VolumeName,
	}
	if o.StorageClass != "" {
		spec.StorageClassName = ptr.To(o.StorageClass)
	}
	return spec
}

// CreatePVC creates a claim in the Env's namespace.
func (e *Env) CreatePVC(o PVCOptions) *v1.PersistentVolumeClaim {
	e.T.Helper()
	require.NotEmpty(e.T, o.Name, "PVCOptions.Name")
	created, err := e.Client.CoreV1().PersistentVolumeClaims(e.Namespace).Create(e.Ctx, MakePVC(e.Namespace, o), metav1.CreateOptions{})
	require.NoError(e.T, err, "creating PVC %s", o.Name)
	return created
}

// CreateCSIDriver creates a CSIDriver object named name (a provisioner
// name, e.g. a FakeProvisioner's) with spec.storageCapacity set as given, so
// that the scheduler consults CSIStorageCapacity objects for its classes.
func (e *Env) CreateCSIDriver(name string, storageCapacity bool) *storagev1.CSIDriver {
	e.T.Helper()
	d := &storagev1.CSIDriver{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: e.Labels()},
		Spec: storagev1.CSIDriverSpec{
			StorageCapacity: ptr.To(storageCapacity),
			AttachRequired:  ptr.To(false),
		},
	}
	created, err := e.Client.StorageV1().CSIDrivers().Create(e.Ctx, d, metav1.CreateOptions{})
	require.NoError(e.T, err, "creating CSIDriver %s", name)
	return created
}

// CSIStorageCapacityOptions describe a CSIStorageCapacity object.
type CSIStorageCapacityOptions struct {
	// Name. Default: generated.
	Name string
	// StorageClass the capacity is for (required).
	StorageClass string
	// Hostname limits the capacity to the node with this
	// kubernetes.io/hostname; NodeTopology, if set, is used instead.
	Hostname     string
	NodeTopology *metav1.LabelSelector
	// Capacity available; empty means unknown (nil).
	Capacity string
	// MaximumVolumeSize; empty means unset.
	MaximumVolumeSize string
	// Mutate, if set, edits the object last.
	Mutate func(*storagev1.CSIStorageCapacity)
}

// CreateCSIStorageCapacity creates a CSIStorageCapacity in the Env's
// namespace (the scheduler reads them from all namespaces).
func (e *Env) CreateCSIStorageCapacity(o CSIStorageCapacityOptions) *storagev1.CSIStorageCapacity {
	e.T.Helper()
	require.NotEmpty(e.T, o.StorageClass, "CSIStorageCapacityOptions.StorageClass")
	c := &storagev1.CSIStorageCapacity{
		ObjectMeta:       metav1.ObjectMeta{Name: o.Name, Namespace: e.Namespace, Labels: e.Labels()},
		StorageClassName: o.StorageClass,
		NodeTopology:     o.NodeTopology,
	}
	if c.Name == "" {
		c.GenerateName = "csisc-"
	}
	if c.NodeTopology == nil && o.Hostname != "" {
		c.NodeTopology = &metav1.LabelSelector{MatchLabels: map[string]string{v1.LabelHostname: o.Hostname}}
	}
	if o.Capacity != "" {
		c.Capacity = ptr.To(resource.MustParse(o.Capacity))
	}
	if o.MaximumVolumeSize != "" {
		c.MaximumVolumeSize = ptr.To(resource.MustParse(o.MaximumVolumeSize))
	}
	if o.Mutate != nil {
		o.Mutate(c)
	}
	created, err := e.Client.StorageV1().CSIStorageCapacities(e.Namespace).Create(e.Ctx, c, metav1.CreateOptions{})
	require.NoError(e.T, err, "creating CSIStorageCapacity for %s", o.StorageClass)
	return created
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func withLabel(labels map[string]string, key, value string) map[string]string {
	if labels == nil {
		labels = map[string]string{}
	}
	labels[key] = value
	return labels
}
