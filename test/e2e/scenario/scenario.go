// Package scenario is the demo's story as reusable steps against any
// cluster (a client-go clientset): a fleet of local PersistentVolumes of
// assorted sizes on a few nodes, a database-like StatefulSet placed by
// berth-scheduler, a node that dies, and berth-nodefailover moving the
// replica to another node with a fresh claim and a hand-off record.
//
// cmd-style drivers narrate it (hack/cmd/berth-demo) and test/e2e asserts
// it; both use these steps, so the demo shows what the tests check.
package scenario

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/berth-dev/berth/pkg/nodefailover/policy"
)

// SchedulerName is Berth's scheduler profile.
const SchedulerName = "berth-scheduler"

// Image is what the replicas run: the pause image, which every kubelet
// (and kind node) already has. The simulated kubelets do not run images.
const Image = "registry.k8s.io/pause:3.10.1"

// LabelScenario marks every cluster-scoped object a Scenario creates, with
// its name as value, for cleanup.
const LabelScenario = "berth.dev/scenario"

// Disk is one local PersistentVolume to create.
type Disk struct {
	Node string
	Size string
}

// Scenario is one run: a namespace, a StorageClass, disks and a
// StatefulSet, all named after Name.
type Scenario struct {
	Client kubernetes.Interface
	// Name prefixes the namespace, StorageClass and PV names.
	Name string
	// Namespace of the StatefulSet (default Name).
	Namespace string
	// Set is the StatefulSet's name (default "db").
	Set string
	// Replicas (default 3) and ClaimSize (default "10Gi") of the set.
	Replicas  int32
	ClaimSize string
	// ClassAnnotations are added to the StorageClass, e.g. a failover
	// threshold. The class opts in with berth.dev/failover: enabled unless
	// NoOptIn is set.
	ClassAnnotations map[string]string
	NoOptIn          bool
	// LocalPath is the PVs' spec.local.path (default /tmp): real kubelets
	// need it to exist on the node; simulated ones ignore it.
	LocalPath string
}

func (s *Scenario) defaults() {
	if s.Namespace == "" {
		s.Namespace = s.Name
	}
	if s.Set == "" {
		s.Set = "db"
	}
	if s.Replicas == 0 {
		s.Replicas = 3
	}
	if s.ClaimSize == "" {
		s.ClaimSize = "10Gi"
	}
	if s.LocalPath == "" {
		s.LocalPath = "/tmp"
	}
}

// StorageClass is the scenario's class name.
func (s *Scenario) StorageClass() string { return s.Name + "-local" }

// PVName names the i-th disk of a node.
func (s *Scenario) PVName(node string, i int) string {
	return fmt.Sprintf("%s-%s-disk%d", s.Name, node, i)
}

// PodName and ClaimName of a replica.
func (s *Scenario) PodName(ordinal int) string { return fmt.Sprintf("%s-%d", s.Set, ordinal) }

// ClaimName of a replica's data volume.
func (s *Scenario) ClaimName(ordinal int) string { return fmt.Sprintf("data-%s-%d", s.Set, ordinal) }

// SchedulableNodes lists the Ready nodes without NoSchedule/NoExecute
// taints and not cordoned (control-plane nodes of kind are excluded that
// way), by name.
func SchedulableNodes(ctx context.Context, client kubernetes.Interface) ([]v1.Node, error) {
	list, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []v1.Node
	for _, n := range list.Items {
		if n.Spec.Unschedulable || !NodeReady(&n) {
			continue
		}
		tainted := false
		for _, t := range n.Spec.Taints {
			if t.Effect == v1.TaintEffectNoSchedule || t.Effect == v1.TaintEffectNoExecute {
				tainted = true
			}
		}
		if !tainted {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// NodeReady reports the node's Ready condition.
func NodeReady(n *v1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == v1.NodeReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

// Hostname is the kubernetes.io/hostname label local PVs pin to.
func Hostname(n *v1.Node) string {
	if h := n.Labels[v1.LabelHostname]; h != "" {
		return h
	}
	return n.Name
}

// Install creates the namespace, the StorageClass (no provisioner,
// WaitForFirstConsumer, opted in to failover) and one local PV per disk,
// pinned to its node's hostname.
func (s *Scenario) Install(ctx context.Context, disks []Disk) error {
	s.defaults()
	labels := map[string]string{LabelScenario: s.Name}
	_, err := s.Client.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.Namespace, Labels: labels}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("creating namespace %s: %w", s.Namespace, err)
	}
	ann := map[string]string{}
	if !s.NoOptIn {
		ann[policy.AnnFailover] = policy.FailoverEnabled
	}
	for k, v := range s.ClassAnnotations {
		ann[k] = v
	}
	_, err = s.Client.StorageV1().StorageClasses().Create(ctx, &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: s.StorageClass(), Labels: labels, Annotations: ann},
		Provisioner:       "kubernetes.io/no-provisioner",
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer),
		ReclaimPolicy:     ptr.To(v1.PersistentVolumeReclaimRetain),
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("creating StorageClass %s: %w", s.StorageClass(), err)
	}
	nodes, err := s.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	hostnames := map[string]string{}
	for i := range nodes.Items {
		hostnames[nodes.Items[i].Name] = Hostname(&nodes.Items[i])
	}
	count := map[string]int{}
	for _, d := range disks {
		host, ok := hostnames[d.Node]
		if !ok {
			return fmt.Errorf("disk on unknown node %q", d.Node)
		}
		count[d.Node]++
		pv := &v1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: s.PVName(d.Node, count[d.Node]), Labels: labels},
			Spec: v1.PersistentVolumeSpec{
				Capacity:                      v1.ResourceList{v1.ResourceStorage: resource.MustParse(d.Size)},
				AccessModes:                   []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
				StorageClassName:              s.StorageClass(),
				PersistentVolumeReclaimPolicy: v1.PersistentVolumeReclaimRetain,
				PersistentVolumeSource:        v1.PersistentVolumeSource{Local: &v1.LocalVolumeSource{Path: s.LocalPath}},
				NodeAffinity: &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
					MatchExpressions: []v1.NodeSelectorRequirement{{Key: v1.LabelHostname, Operator: v1.NodeSelectorOpIn, Values: []string{host}}},
				}}}},
			},
		}
		if _, err := s.Client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating PV %s: %w", pv.Name, err)
		}
	}
	return nil
}

// CreateStatefulSet creates the headless Service and the StatefulSet:
// Replicas pods (OrderedReady, so placement happens one replica at a
// time) with a ClaimSize volumeClaimTemplate "data" of the scenario's
// class, scheduled by berth-scheduler.
func (s *Scenario) CreateStatefulSet(ctx context.Context) (*appsv1.StatefulSet, error) {
	s.defaults()
	labels := map[string]string{"app": s.Set}
	_, err := s.Client.CoreV1().Services(s.Namespace).Create(ctx, &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: s.Set},
		Spec: v1.ServiceSpec{ClusterIP: v1.ClusterIPNone, Selector: labels,
			Ports: []v1.ServicePort{{Name: "db", Port: 5432}}},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("creating Service %s: %w", s.Set, err)
	}
	set := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: s.Set},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To(s.Replicas),
			ServiceName: s.Set,
			Selector:    &metav1.LabelSelector{MatchLabels: labels},
			Template: v1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: v1.PodSpec{
					SchedulerName:                 SchedulerName,
					TerminationGracePeriodSeconds: ptr.To[int64](5),
					Containers: []v1.Container{{
						Name:  "db",
						Image: Image,
						Ports: []v1.ContainerPort{{Name: "db", ContainerPort: 5432}},
						Resources: v1.ResourceRequirements{Requests: v1.ResourceList{
							v1.ResourceCPU: resource.MustParse("100m"), v1.ResourceMemory: resource.MustParse("64Mi"),
						}},
						VolumeMounts: []v1.VolumeMount{{Name: "data", MountPath: "/var/lib/db"}},
					}},
				},
			},
			VolumeClaimTemplates: []v1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: v1.PersistentVolumeClaimSpec{
					AccessModes:      []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
					StorageClassName: ptr.To(s.StorageClass()),
					Resources: v1.VolumeResourceRequirements{Requests: v1.ResourceList{
						v1.ResourceStorage: resource.MustParse(s.ClaimSize),
					}},
				},
			}},
		},
	}
	created, err := s.Client.AppsV1().StatefulSets(s.Namespace).Create(ctx, set, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("creating StatefulSet %s: %w", s.Set, err)
	}
	return created, nil
}

// Replica is where one replica runs.
type Replica struct {
	Pod      string
	PodUID   types.UID
	Node     string
	Claim    string
	ClaimUID types.UID
	PV       string
	// PVSize is the volume's capacity, ClaimSize the request.
	PVSize, ClaimSize resource.Quantity
	Running           bool
}

// Utilization is the percent of the volume the claim requests.
func (r Replica) Utilization() float64 {
	if r.PVSize.IsZero() {
		return 0
	}
	return 100 * float64(r.ClaimSize.Value()) / float64(r.PVSize.Value())
}

// Replica returns where replica ordinal runs now; ok is false until the
// pod is bound to a node and its claim to a volume.
func (s *Scenario) Replica(ctx context.Context, ordinal int) (r Replica, ok bool, err error) {
	s.defaults()
	pod, err := s.Client.CoreV1().Pods(s.Namespace).Get(ctx, s.PodName(ordinal), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return r, false, nil
	}
	if err != nil {
		return r, false, err
	}
	r = Replica{Pod: pod.Name, PodUID: pod.UID, Node: pod.Spec.NodeName, Claim: s.ClaimName(ordinal),
		Running: pod.Status.Phase == v1.PodRunning && pod.DeletionTimestamp == nil}
	claim, err := s.Client.CoreV1().PersistentVolumeClaims(s.Namespace).Get(ctx, r.Claim, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return r, false, nil
	}
	if err != nil {
		return r, false, err
	}
	r.ClaimUID, r.PV, r.ClaimSize = claim.UID, claim.Spec.VolumeName, claim.Spec.Resources.Requests[v1.ResourceStorage]
	if r.PV == "" || claim.Status.Phase != v1.ClaimBound || r.Node == "" {
		return r, false, nil
	}
	pv, err := s.Client.CoreV1().PersistentVolumes().Get(ctx, r.PV, metav1.GetOptions{})
	if err != nil {
		return r, false, err
	}
	r.PVSize = pv.Spec.Capacity[v1.ResourceStorage]
	return r, true, nil
}

// WaitRunning waits until replica ordinal runs with a bound claim and
// accept(replica) holds (e.g. "on another node than before").
func (s *Scenario) WaitRunning(ctx context.Context, ordinal int, timeout time.Duration, accept func(Replica) bool) (Replica, error) {
	var last Replica
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		r, ok, err := s.Replica(ctx, ordinal)
		if err != nil {
			return false, nil // transient; the timeout reports it
		}
		last = r
		return ok && r.Running && (accept == nil || accept(r)), nil
	})
	if err != nil {
		return last, fmt.Errorf("replica %s not Running as expected within %v (last seen: pod on %q, claim %s → PV %q, running=%v): %w",
			s.PodName(ordinal), timeout, last.Node, last.Claim, last.PV, last.Running, err)
	}
	return last, nil
}

// FreePVs lists the scenario's unclaimed PVs, smallest first: what a new
// claim could still get (a PV created a moment ago may still be Pending
// until the PV controller marks it Available).
func (s *Scenario) FreePVs(ctx context.Context) ([]v1.PersistentVolume, error) {
	list, err := s.Client.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{LabelSelector: LabelScenario + "=" + s.Name})
	if err != nil {
		return nil, err
	}
	var out []v1.PersistentVolume
	for _, pv := range list.Items {
		if pv.Spec.ClaimRef == nil && (pv.Status.Phase == v1.VolumeAvailable || pv.Status.Phase == v1.VolumePending || pv.Status.Phase == "") {
			out = append(out, pv)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Spec.Capacity[v1.ResourceStorage], out[j].Spec.Capacity[v1.ResourceStorage]
		if c := a.Cmp(b); c != 0 {
			return c < 0
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// PVNode is the hostname a local PV is pinned to.
func PVNode(pv *v1.PersistentVolume) string {
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return ""
	}
	for _, term := range pv.Spec.NodeAffinity.Required.NodeSelectorTerms {
		for _, e := range term.MatchExpressions {
			if e.Key == v1.LabelHostname && len(e.Values) > 0 {
				return e.Values[0]
			}
		}
	}
	return ""
}

// TightestFit returns the free PV (not on an excluded node) that a claim
// of size fits best: the smallest one at least as big. ok is false when
// none fits.
func TightestFit(free []v1.PersistentVolume, size resource.Quantity, excluded map[string]bool) (pv v1.PersistentVolume, ok bool) {
	for _, p := range free { // sorted by size
		c := p.Spec.Capacity[v1.ResourceStorage]
		if c.Cmp(size) >= 0 && !excluded[PVNode(&p)] {
			return p, true
		}
	}
	return pv, false
}

// WaitNode waits until cond holds for the node.
func WaitNode(ctx context.Context, client kubernetes.Interface, name string, timeout time.Duration, cond func(*v1.Node) bool) (*v1.Node, error) {
	var last *v1.Node
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = n
		return cond(n), nil
	})
	return last, err
}

// NotReady is true once the node lifecycle controller gave up on the node
// (Ready Unknown or False).
func NotReady(n *v1.Node) bool { return !NodeReady(n) }

// Unreachable reports the node.kubernetes.io/unreachable NoExecute taint.
func Unreachable(n *v1.Node) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == v1.TaintNodeUnreachable && t.Effect == v1.TaintEffectNoExecute {
			return true
		}
	}
	return false
}

// HandOff is what the failover leaves for the database operator.
type HandOff struct {
	// ClaimAnnotations are the berth.dev/ annotations on the recreated
	// claim (from node, from PV, at).
	ClaimAnnotations map[string]string
	// OldPV is the retained volume on the dead node and its berth.dev/
	// annotations (phase, pod, claim, owner, ...).
	OldPV            string
	OldPVPhase       v1.PersistentVolumePhase
	OldPVAnnotations map[string]string
}

// WaitHandOff waits until the recreated claim of replica ordinal carries
// the hand-off annotations and the old PV records a completed failover.
func (s *Scenario) WaitHandOff(ctx context.Context, ordinal int, oldPV string, timeout time.Duration) (HandOff, error) {
	var h HandOff
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		claim, err := s.Client.CoreV1().PersistentVolumeClaims(s.Namespace).Get(ctx, s.ClaimName(ordinal), metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		pv, err := s.Client.CoreV1().PersistentVolumes().Get(ctx, oldPV, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		h = HandOff{ClaimAnnotations: BerthAnnotations(claim.Annotations), OldPV: pv.Name, OldPVPhase: pv.Status.Phase,
			OldPVAnnotations: BerthAnnotations(pv.Annotations)}
		return claim.Annotations[policy.AnnFailedOverFromPV] == oldPV &&
			pv.Annotations[policy.AnnFailoverPhase] == policy.PVPhaseCompleted, nil
	})
	if err != nil {
		return h, fmt.Errorf("no completed hand-off for %s within %v (claim annotations %v, old PV %s annotations %v): %w",
			s.ClaimName(ordinal), timeout, h.ClaimAnnotations, oldPV, h.OldPVAnnotations, err)
	}
	return h, nil
}

// BerthAnnotations keeps the berth.dev/ keys.
func BerthAnnotations(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if strings.HasPrefix(k, "berth.dev/") {
			out[k] = v
		}
	}
	return out
}

// BerthEvents lists the events with a Berth reason (BerthFailover...) in
// the scenario's namespace and in "default" (where events about nodes and
// PVs go), oldest first.
func (s *Scenario) BerthEvents(ctx context.Context) ([]v1.Event, error) {
	var out []v1.Event
	for _, ns := range []string{s.Namespace, metav1.NamespaceDefault} {
		list, err := s.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		for _, e := range list.Items {
			if strings.HasPrefix(e.Reason, "Berth") && s.concerns(&e) {
				out = append(out, e)
			}
		}
	}
	// Core events have second resolution: order ties by the failover's
	// own sequence.
	sort.SliceStable(out, func(i, j int) bool {
		ti, tj := EventTime(&out[i]), EventTime(&out[j])
		if !ti.Equal(tj) {
			return ti.Before(tj)
		}
		if ri, rj := reasonRank(out[i].Reason), reasonRank(out[j].Reason); ri != rj {
			return ri < rj
		}
		return kindRank(out[i].InvolvedObject.Kind) < kindRank(out[j].InvolvedObject.Kind)
	})
	return out, nil
}

func kindRank(kind string) int {
	for i, k := range []string{"Node", "Pod", "PersistentVolumeClaim", "PersistentVolume", "StatefulSet"} {
		if k == kind {
			return i
		}
	}
	return 99
}

func reasonRank(reason string) int {
	for i, r := range []string{policy.ReasonDryRun, policy.ReasonSkipped, policy.ReasonStarted, policy.ReasonHandOff, policy.ReasonCompleted, policy.ReasonAborted, policy.ReasonFailed} {
		if r == reason {
			return i
		}
	}
	return 99
}

// concerns keeps events about the scenario's objects (its namespace, or
// its PVs and nodes in "default").
func (s *Scenario) concerns(e *v1.Event) bool {
	o := e.InvolvedObject
	switch {
	case o.Namespace == s.Namespace:
		return true
	case o.Kind == "PersistentVolume":
		return strings.HasPrefix(o.Name, s.Name+"-")
	case o.Kind == "Node":
		return strings.Contains(e.Message, s.Namespace+"/")
	}
	return false
}

// EventTime is the best timestamp of an event.
func EventTime(e *v1.Event) time.Time {
	switch {
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	}
	return e.FirstTimestamp.Time
}

// Cleanup deletes what the scenario created: the namespace (StatefulSet,
// pods, claims, events) and its PVs and StorageClass. Pods on dead nodes
// are force-deleted and claim/PV finalizers are not waited for.
func (s *Scenario) Cleanup(ctx context.Context) error {
	s.defaults()
	core := s.Client.CoreV1()
	var errs []string
	note := func(err error) {
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err.Error())
		}
	}
	note(s.Client.AppsV1().StatefulSets(s.Namespace).Delete(ctx, s.Set, metav1.DeleteOptions{}))
	if pods, err := core.Pods(s.Namespace).List(ctx, metav1.ListOptions{}); err == nil {
		for _, p := range pods.Items {
			note(core.Pods(s.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}))
		}
	}
	note(core.Namespaces().Delete(ctx, s.Namespace, metav1.DeleteOptions{}))
	sel := metav1.ListOptions{LabelSelector: LabelScenario + "=" + s.Name}
	note(core.PersistentVolumes().DeleteCollection(ctx, metav1.DeleteOptions{}, sel))
	note(s.Client.StorageV1().StorageClasses().DeleteCollection(ctx, metav1.DeleteOptions{}, sel))
	if len(errs) > 0 {
		return fmt.Errorf("cleanup of %s: %s", s.Name, strings.Join(errs, "; "))
	}
	return nil
}
