package main

import (
	"context"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/berth-dev/berth/pkg/nodefailover/policy"
)

// followReplica narrates, as they happen, the changes of one replica's pod
// and claim (watches, so that sub-second steps are not missed): deletions,
// the StatefulSet controller's recreations, the scheduler's binding, the
// PV controller's bind, Running, the hand-off annotations.
func (d *demo) followReplica(ctx context.Context, ordinal int) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	pods := d.client.CoreV1().Pods(d.s.Namespace)
	claims := d.client.CoreV1().PersistentVolumeClaims(d.s.Namespace)
	podSel := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", d.s.PodName(ordinal)).String()}
	claimSel := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", d.s.ClaimName(ordinal)).String()}

	// The current objects are the baseline: only changes are told.
	podRV, claimRV := "", ""
	seenPods := map[types.UID]v1.Pod{}
	seenClaims := map[types.UID]v1.PersistentVolumeClaim{}
	if l, err := pods.List(ctx, podSel); err == nil {
		podRV = l.ResourceVersion
		for _, p := range l.Items {
			seenPods[p.UID] = p
		}
	}
	if l, err := claims.List(ctx, claimSel); err == nil {
		claimRV = l.ResourceVersion
		for _, c := range l.Items {
			seenClaims[c.UID] = c
		}
	}
	wg.Go(func() {
		seen := seenPods
		follow(ctx, podRV, func(o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = podSel.FieldSelector
			return pods.Watch(ctx, o)
		}, func(t watch.EventType, obj any) {
			pod, ok := obj.(*v1.Pod)
			if !ok {
				return
			}
			old, known := seen[pod.UID]
			seen[pod.UID] = *pod
			uid := short(pod.UID)
			switch {
			case t == watch.Deleted:
				d.say("pod %s (uid %s) is gone", pod.Name, uid)
			case !known && pod.DeletionTimestamp == nil:
				d.say("StatefulSet controller recreated pod %s (uid %s), Pending", pod.Name, uid)
			}
			if t == watch.Deleted {
				return
			}
			if pod.DeletionTimestamp != nil && old.DeletionTimestamp == nil && known {
				d.say("pod %s (uid %s) deleted", pod.Name, uid)
			}
			if pod.Annotations[policy.AnnFailoverPhase] != old.Annotations[policy.AnnFailoverPhase] && pod.Annotations[policy.AnnFailoverPhase] != "" {
				d.say("berth-nodefailover marked pod %s %s=%s", pod.Name, policy.AnnFailoverPhase, pod.Annotations[policy.AnnFailoverPhase])
			}
			if pod.Spec.NodeName != "" && old.Spec.NodeName == "" {
				d.say("berth-scheduler bound pod %s to %s", pod.Name, pod.Spec.NodeName)
			}
			if pod.Status.Phase == v1.PodRunning && old.Status.Phase != v1.PodRunning && pod.DeletionTimestamp == nil {
				d.say("pod %s Running on %s", pod.Name, pod.Spec.NodeName)
			}
		})
	})
	wg.Go(func() {
		seen := seenClaims
		follow(ctx, claimRV, func(o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = claimSel.FieldSelector
			return claims.Watch(ctx, o)
		}, func(t watch.EventType, obj any) {
			c, ok := obj.(*v1.PersistentVolumeClaim)
			if !ok {
				return
			}
			old, known := seen[c.UID]
			seen[c.UID] = *c
			uid := short(c.UID)
			switch {
			case t == watch.Deleted:
				d.say("claim %s (uid %s) is gone", c.Name, uid)
				return
			case !known && c.DeletionTimestamp == nil:
				d.say("StatefulSet controller recreated claim %s (uid %s), Pending (WaitForFirstConsumer)", c.Name, uid)
			}
			if c.DeletionTimestamp != nil && old.DeletionTimestamp == nil && known {
				d.say("claim %s (uid %s) deleted (the PVC protection finalizer holds it until the pod is gone)", c.Name, uid)
			}
			if c.Status.Phase == v1.ClaimBound && old.Status.Phase != v1.ClaimBound {
				d.say("PV controller bound claim %s to PV %s (chosen by berth-scheduler)", c.Name, c.Spec.VolumeName)
			}
			if c.Annotations[policy.AnnFailedOverFromPV] != "" && old.Annotations[policy.AnnFailedOverFromPV] == "" {
				d.say("berth-nodefailover annotated claim %s for the hand-off (from PV %s)", c.Name, c.Annotations[policy.AnnFailedOverFromPV])
			}
		})
	})
	return func() { cancel(); wg.Wait() }
}

// follow watches from resourceVersion rv, re-establishing the watch when
// the server closes it, until ctx ends.
func follow(ctx context.Context, rv string, open func(metav1.ListOptions) (watch.Interface, error), handle func(watch.EventType, any)) {
	for ctx.Err() == nil {
		w, err := open(metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
		if err != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
				continue
			}
		}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				rv = "" // expired: start from now
				break
			}
			if m, err := metaAccessor(ev.Object); err == nil {
				rv = m
			}
			if ev.Type != watch.Bookmark {
				handle(ev.Type, ev.Object)
			}
		}
		w.Stop()
	}
}

func metaAccessor(obj any) (string, error) {
	if o, ok := obj.(metav1.Object); ok {
		return o.GetResourceVersion(), nil
	}
	return "", errNoMeta
}

type errString string

func (e errString) Error() string { return string(e) }

const errNoMeta = errString("no object metadata")

func short(uid types.UID) string {
	if len(uid) > 8 {
		return string(uid)[:8]
	}
	return string(uid)
}
