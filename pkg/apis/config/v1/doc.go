// Package v1 holds the versioned (kubescheduler.config.k8s.io/v1) plugin args
// of Berth's scheduler plugins, as written in a KubeSchedulerConfiguration's
// profiles[].pluginConfig[].args, together with their defaulting and their
// conversion to the internal types of package
// github.com/berth-dev/berth/pkg/apis/config.
//
// +k8s:deepcopy-gen=package
// +groupName=kubescheduler.config.k8s.io
package v1
