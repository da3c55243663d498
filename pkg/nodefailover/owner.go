package nodefailover

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/pkg/nodefailover/policy"
)

// owner is who recreates a pod: its controller owner (a StatefulSet or an
// operator's object), or the pod itself when it has none.
type owner struct {
	// key is the budget key (policy.OwnerKey).
	key string
	// kind and name (namespace/name) for messages.
	kind, name string
	// uid of the controller owner; empty for a pod without one.
	uid types.UID
	// annotations of the owner object (nil if unknown).
	annotations map[string]string
	// eventTarget is the object events about the owner go to.
	eventTarget any
}

// resolveOwner finds the pod's owner and its annotations: StatefulSets from
// the informer cache, other kinds with a metadata-only GET.
func (c *Controller) resolveOwner(ctx context.Context, pod *v1.Pod) owner {
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return owner{
			key: policy.OwnerKey("Pod", pod.Namespace, pod.Name), kind: "Pod",
			name: pod.Namespace + "/" + pod.Name, eventTarget: pod,
		}
	}
	o := owner{
		key: policy.OwnerKey(ref.Kind, pod.Namespace, ref.Name), kind: ref.Kind,
		name: pod.Namespace + "/" + ref.Name, uid: ref.UID,
		eventTarget: &v1.ObjectReference{
			APIVersion: ref.APIVersion, Kind: ref.Kind, Namespace: pod.Namespace, Name: ref.Name, UID: ref.UID,
		},
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return o
	}
	logger := klog.FromContext(ctx)
	if gv.Group == appsv1.GroupName && ref.Kind == "StatefulSet" {
		// A fresh read: its pause and budget annotations gate the failover,
		// and an admin may pause the owner just before lifting a pause on
		// the namespace (read fresh as well); the cache could lag behind.
		set, err := c.client.AppsV1().StatefulSets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			logger.V(2).Info("Cannot read the owner from the API server; using the cache", "owner", o.key, "err", err)
			set, err = c.stsLister.StatefulSets(pod.Namespace).Get(ref.Name)
		}
		if err == nil && set.UID == ref.UID {
			o.annotations = set.Annotations
			o.eventTarget = set
		}
		return o
	}
	if c.metadata == nil || c.mapper == nil {
		return o
	}
	mapping, err := c.mapper.RESTMapping(gv.WithKind(ref.Kind).GroupKind(), gv.Version)
	if err != nil {
		logger.V(2).Info("Cannot map the owner's kind; treating it as unannotated", "owner", o.key, "err", err)
		return o
	}
	obj, err := c.metadata.Resource(mapping.Resource).Namespace(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		if !apierrors.IsNotFound(err) {
			logger.V(2).Info("Cannot read the owner; treating it as unannotated", "owner", o.key, "err", err)
		}
		return o
	}
	if obj.UID == ref.UID {
		o.annotations = obj.Annotations
	}
	return o
}
