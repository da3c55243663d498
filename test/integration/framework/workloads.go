package framework

import (
	"fmt"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// PauseImage is the image of the containers the helpers create (nothing
// pulls it: the simulated kubelet only reports it running).
const PauseImage = "registry.k8s.io/pause:3.10"

// EphemeralVolume is a generic ephemeral volume of a pod. In a cluster the
// ephemeral-volume controller of kube-controller-manager creates the claim
// "<pod>-<Name>" from the template; the harness does not run that
// controller, CreatePod creates the claim itself (owned by the pod, exactly
// as the controller would) right after the pod.
type EphemeralVolume struct {
	// Name of the volume in the pod; the claim is "<pod>-<Name>".
	Name string
	// Claim is the claim template (its Name is ignored).
	Claim PVCOptions
}

// PodOptions describe a pod.
type PodOptions struct {
	// Name (required).
	Name string
	// SchedulerName. Default BerthSchedulerName.
	SchedulerName string
	// PVCs are claim names; each becomes a volume "vol-<i>" mounted at
	// /data/<i>.
	PVCs []string
	// EphemeralVolumes are generic ephemeral volumes.
	EphemeralVolumes []EphemeralVolume
	// CPU and Memory are the container's requests (and limits); empty
	// means none.
	CPU, Memory string
	// NodeName binds the pod directly, bypassing the scheduler.
	NodeName string
	// NodeSelector, Affinity and Tolerations of the pod.
	NodeSelector map[string]string
	Affinity     *v1.Affinity
	Tolerations  []v1.Toleration
	// Labels and Annotations of the pod.
	Labels, Annotations map[string]string
	// Image. Default PauseImage.
	Image string
	// Mutate, if set, edits the object last.
	Mutate func(*v1.Pod)
}

// MakePod builds a pod in namespace.
func MakePod(namespace string, o PodOptions) *v1.Pod {
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Namespace: namespace, Labels: copyMap(o.Labels), Annotations: copyMap(o.Annotations)},
		Spec:       podSpec(o.Name, o),
	}
	if o.Mutate != nil {
		o.Mutate(pod)
	}
	return pod
}

func podSpec(podName string, o PodOptions) v1.PodSpec {
	c := v1.Container{Name: "main", Image: orDefault(o.Image, PauseImage)}
	requests := v1.ResourceList{}
	if o.CPU != "" {
		requests[v1.ResourceCPU] = resource.MustParse(o.CPU)
	}
	if o.Memory != "" {
		requests[v1.ResourceMemory] = resource.MustParse(o.Memory)
	}
	if len(requests) > 0 {
		c.Resources = v1.ResourceRequirements{Requests: requests, Limits: requests.DeepCopy()}
	}
	spec := v1.PodSpec{
		SchedulerName:                 orDefault(o.SchedulerName, BerthSchedulerName),
		NodeName:                      o.NodeName,
		NodeSelector:                  o.NodeSelector,
		Affinity:                      o.Affinity,
		Tolerations:                   o.Tolerations,
		TerminationGracePeriodSeconds: ptr.To[int64](1),
	}
	for i, claim := range o.PVCs {
		name := fmt.Sprintf("vol-%d", i)
		spec.Volumes = append(spec.Volumes, v1.Volume{Name: name, VolumeSource: v1.VolumeSource{
			PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: claim},
		}})
		c.VolumeMounts = append(c.VolumeMounts, v1.VolumeMount{Name: name, MountPath: fmt.Sprintf("/data/%d", i)})
	}
	for _, ev := range o.EphemeralVolumes {
		tmpl := ev.Claim
		spec.Volumes = append(spec.Volumes, v1.Volume{Name: ev.Name, VolumeSource: v1.VolumeSource{
			Ephemeral: &v1.EphemeralVolumeSource{VolumeClaimTemplate: &v1.PersistentVolumeClaimTemplate{
				ObjectMeta: metav1.ObjectMeta{Labels: copyMap(tmpl.Labels), Annotations: copyMap(tmpl.Annotations)},
				Spec:       pvcSpec(tmpl),
			}},
		}})
		c.VolumeMounts = append(c.VolumeMounts, v1.VolumeMount{Name: ev.Name, MountPath: "/ephemeral/" + ev.Name})
	}
	spec.Containers = []v1.Container{c}
	return spec
}

// EphemeralClaimName is the name of the claim of a pod's generic ephemeral
// volume.
func EphemeralClaimName(podName, volumeName string) string {
	return podName + "-" + volumeName
}

// CreatePod creates a pod in the Env's namespace. For generic ephemeral
// volumes it also creates their claims, owned by the pod, as the
// ephemeral-volume controller of kube-controller-manager would (the
// scheduler waits for them to exist).
func (e *Env) CreatePod(o PodOptions) *v1.Pod {
	e.T.Helper()
	require.NotEmpty(e.T, o.Name, "PodOptions.Name")
	created, err := e.Client.CoreV1().Pods(e.Namespace).Create(e.Ctx, MakePod(e.Namespace, o), metav1.CreateOptions{})
	require.NoError(e.T, err, "creating pod %s", o.Name)
	for _, ev := range o.EphemeralVolumes {
		claim := MakePVC(e.Namespace, ev.Claim)
		claim.Name = EphemeralClaimName(o.Name, ev.Name)
		claim.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: "v1", Kind: "Pod", Name: created.Name, UID: created.UID,
			Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
		}}
		_, err := e.Client.CoreV1().PersistentVolumeClaims(e.Namespace).Create(e.Ctx, claim, metav1.CreateOptions{})
		require.NoError(e.T, err, "creating ephemeral claim %s", claim.Name)
	}
	return created
}

// StatefulSetOptions describe a StatefulSet.
type StatefulSetOptions struct {
	// Name (required).
	Name string
	// Replicas (0 means 0).
	Replicas int32
	// SchedulerName. Default BerthSchedulerName.
	SchedulerName string
	// VolumeClaimTemplates; each template's Name is the volume name, and
	// the claims are named StatefulSetClaimName(template, set, ordinal).
	VolumeClaimTemplates []PVCOptions
	// CPU and Memory requests of the container.
	CPU, Memory string
	// PodManagementPolicy. Default OrderedReady (the API default).
	PodManagementPolicy appsv1.PodManagementPolicyType
	// PVCRetentionPolicy (nil: Retain/Retain, the API default).
	PVCRetentionPolicy *appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy
	// Tolerations and Affinity of the pods.
	Tolerations []v1.Toleration
	Affinity    *v1.Affinity
	// Labels are added to the pod template (the selector is app=<Name>).
	Labels map[string]string
	// Mutate, if set, edits the object last.
	Mutate func(*appsv1.StatefulSet)
}

// MakeStatefulSet builds a StatefulSet in namespace.
func MakeStatefulSet(namespace string, o StatefulSetOptions) *appsv1.StatefulSet {
	labels := map[string]string{"app": o.Name}
	for k, v := range o.Labels {
		labels[k] = v
	}
	spec := podSpec(o.Name, PodOptions{
		SchedulerName: o.SchedulerName, CPU: o.CPU, Memory: o.Memory,
		Tolerations: o.Tolerations, Affinity: o.Affinity,
	})
	for _, tmpl := range o.VolumeClaimTemplates {
		spec.Containers[0].VolumeMounts = append(spec.Containers[0].VolumeMounts,
			v1.VolumeMount{Name: tmpl.Name, MountPath: "/data/" + tmpl.Name})
	}
	set := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Namespace: namespace},
		Spec: appsv1.StatefulSetSpec{
			Replicas:            ptr.To(o.Replicas),
			ServiceName:         o.Name,
			Selector:            &metav1.LabelSelector{MatchLabels: map[string]string{"app": o.Name}},
			PodManagementPolicy: o.PodManagementPolicy,
			Template: v1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       spec,
			},
			PersistentVolumeClaimRetentionPolicy: o.PVCRetentionPolicy,
		},
	}
	for _, tmpl := range o.VolumeClaimTemplates {
		claim := MakePVC("", tmpl)
		set.Spec.VolumeClaimTemplates = append(set.Spec.VolumeClaimTemplates, *claim)
	}
	if o.Mutate != nil {
		o.Mutate(set)
	}
	return set
}

// CreateStatefulSet creates a StatefulSet in the Env's namespace (run the
// StatefulSet controller to get pods and claims).
func (e *Env) CreateStatefulSet(o StatefulSetOptions) *appsv1.StatefulSet {
	e.T.Helper()
	require.NotEmpty(e.T, o.Name, "StatefulSetOptions.Name")
	created, err := e.Client.AppsV1().StatefulSets(e.Namespace).Create(e.Ctx, MakeStatefulSet(e.Namespace, o), metav1.CreateOptions{})
	require.NoError(e.T, err, "creating StatefulSet %s", o.Name)
	return created
}

// StatefulSetPodName is the name of a StatefulSet's pod.
func StatefulSetPodName(set string, ordinal int) string {
	return fmt.Sprintf("%s-%d", set, ordinal)
}

// StatefulSetClaimName is the name of the claim a StatefulSet creates from
// a volumeClaimTemplate for one ordinal.
func StatefulSetClaimName(template, set string, ordinal int) string {
	return fmt.Sprintf("%s-%s-%d", template, set, ordinal)
}
