// Package storagescore is Berth's StorageScore plugin: it prefers the node
// where the pod's claims fit their volumes most tightly, so large disks stay
// free for large claims (kubernetes#83323, local-static-provisioner#150).
//
// It scores the plan LocalVolumeBinding's Filter made for each node: the
// utilization of the chosen volumes (requested bytes over capacity bytes,
// with a CSIStorageCapacity's limit standing in for claims to provision) is
// mapped through a configurable curve. The default curve rises linearly from
// 0 at 0% to 100 at 100%: the tightest fit wins.
package storagescore

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/berth-dev/berth/pkg/apis/config"
	"github.com/berth-dev/berth/pkg/apis/config/validation"
	"github.com/berth-dev/berth/pkg/plugins/volumebinding"
)

// Name is the plugin's name in profiles and pluginConfig.
const Name = "StorageScore"

// neutral marks a node without capacity information until NormalizeScore
// gives it the mean of the informed nodes' scores.
const neutral = -1

// StorageScore scores nodes by how tightly the pod's claims fit.
type StorageScore struct {
	curve curve
}

var (
	_ fwk.PreScorePlugin = &StorageScore{}
	_ fwk.ScorePlugin    = &StorageScore{}
	_ fwk.SignPlugin     = &StorageScore{}
)

// New builds the plugin from its (defaulted) args.
func New(_ context.Context, obj runtime.Object, _ fwk.Handle) (fwk.Plugin, error) {
	args, ok := obj.(*config.StorageScoreArgs)
	if !ok {
		return nil, fmt.Errorf("%s: want args of type StorageScoreArgs, got %T", Name, obj)
	}
	if err := validation.ValidateStorageScoreArgs(nil, args); err != nil {
		return nil, fmt.Errorf("%s: invalid args: %w", Name, err)
	}
	return &StorageScore{curve: newCurve(args.Shape)}, nil
}

// Name returns the plugin name.
func (pl *StorageScore) Name() string { return Name }

// SignPod: the score depends only on LocalVolumeBinding's plan, which refuses
// to batch pods with claims; pods without claims all score alike.
func (pl *StorageScore) SignPod(ctx context.Context, pod *v1.Pod) ([]fwk.SignFragment, *fwk.Status) {
	return []fwk.SignFragment{{Key: fwk.VolumesSignerName, Value: fwk.VolumesSigner(pod)}}, nil
}

// PreScore skips scoring for pods without unbound claims: every node would
// score the same.
func (pl *StorageScore) PreScore(ctx context.Context, cs fwk.CycleState, pod *v1.Pod, nodes []fwk.NodeInfo) *fwk.Status {
	if !volumebinding.HasUnboundClaims(cs) {
		return fwk.NewStatus(fwk.Skip)
	}
	return nil
}

// Score maps the node's storage utilization through the curve.
func (pl *StorageScore) Score(ctx context.Context, cs fwk.CycleState, pod *v1.Pod, nodeInfo fwk.NodeInfo) (int64, *fwk.Status) {
	plan, ok := volumebinding.PlanFor(cs, nodeInfo.Node().Name)
	if !ok {
		return neutral, nil
	}
	u, ok := Utilization(plan)
	if !ok {
		return neutral, nil
	}
	return pl.curve.at(u), nil
}

// ScoreExtensions returns the plugin itself for NormalizeScore.
func (pl *StorageScore) ScoreExtensions() fwk.ScoreExtensions { return pl }

// NormalizeScore gives nodes without capacity information (claims to
// provision by drivers that do not track capacity) the mean score of the
// others, so they are neither favoured nor penalised.
func (pl *StorageScore) NormalizeScore(ctx context.Context, cs fwk.CycleState, pod *v1.Pod, scores fwk.NodeScoreList) *fwk.Status {
	var sum, n int64
	for _, s := range scores {
		if s.Score != neutral {
			sum += s.Score
			n++
		}
	}
	fill := fwk.MaxNodeScore / 2
	if n > 0 {
		fill = sum / n
	}
	for i := range scores {
		if scores[i].Score == neutral {
			scores[i].Score = fill
		}
	}
	return nil
}

// Utilization returns the percentage of the plan's storage capacity that the
// pod's claims request: static bindings count their volume's capacity, and
// claims to provision count the limit of the CSIStorageCapacity that admitted
// them (once per capacity object). ok is false when nothing in the plan has a
// known capacity.
func Utilization(plan *volumebinding.NodePlan) (percent int64, ok bool) {
	var requested, capacity float64
	for _, b := range plan.Static {
		requested += float64(b.Request)
		capacity += float64(b.Capacity)
	}
	counted := map[string]bool{}
	for _, p := range plan.Provisions {
		if p.NodeCapacity == nil {
			continue
		}
		requested += float64(p.Request)
		key := p.NodeCapacity.Namespace + "/" + p.NodeCapacity.Name
		if !counted[key] {
			counted[key] = true
			if q := volumebinding.VolumeLimit(p.NodeCapacity); q != nil {
				capacity += float64(q.Value())
			}
		}
	}
	if capacity <= 0 {
		return 0, false
	}
	return int64(requested * 100 / capacity), true
}
