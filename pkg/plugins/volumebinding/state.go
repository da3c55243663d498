package volumebinding

import (
	"errors"
	"sync"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	fwk "k8s.io/kube-scheduler/framework"
)

// stateKey is where PreFilter leaves the pod's claims and Filter its per-node
// plans, for Reserve, PreBind and the StorageScore plugin.
const stateKey fwk.StateKey = Name

// StaticBinding is a claim matched to an existing PV.
type StaticBinding struct {
	PVC *v1.PersistentVolumeClaim
	PV  *v1.PersistentVolume
	// Request and Capacity are in bytes.
	Request, Capacity int64
}

// Provision is a claim left to dynamic provisioning on the node.
type Provision struct {
	PVC   *v1.PersistentVolumeClaim
	Class string
	// Request is in bytes.
	Request int64
	// NodeCapacity is the CSIStorageCapacity that admitted the claim, nil
	// when the driver does not track capacity.
	NodeCapacity *storagev1.CSIStorageCapacity
}

// NodePlan is what Filter decided the pod's unbound claims would use on one
// node.
type NodePlan struct {
	Static     []StaticBinding
	Provisions []Provision
}

// stateData is created in PreFilter. Filter runs in parallel across nodes,
// so plans is guarded by mu; the rest is read-only after PreFilter.
type stateData struct {
	claims *podClaims

	mu    sync.Mutex
	plans map[string]*NodePlan

	// Set by Reserve for PreBind and Unreserve (one node per cycle).
	reserved *reservation
}

// Clone shares the state: plans are keyed by node, and the framework clones
// CycleState only to evaluate nodes, which is safe with the mutex.
func (s *stateData) Clone() fwk.StateData { return s }

func (s *stateData) setPlan(node string, p *NodePlan) {
	s.mu.Lock()
	s.plans[node] = p
	s.mu.Unlock()
}

func (s *stateData) plan(node string) (*NodePlan, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.plans[node]
	return p, ok
}

func readState(cs fwk.CycleState) (*stateData, error) {
	v, err := cs.Read(stateKey)
	if err != nil {
		return nil, err
	}
	s, ok := v.(*stateData)
	if !ok {
		return nil, errors.New("LocalVolumeBinding: cycle state has unexpected type")
	}
	return s, nil
}

// PlanFor returns the plan LocalVolumeBinding's Filter made for the pod on a
// node. ok is false when the pod has no unbound claims or the node was not
// evaluated; StorageScore then scores the node neutrally.
func PlanFor(cs fwk.CycleState, nodeName string) (plan *NodePlan, ok bool) {
	s, err := readState(cs)
	if err != nil || s.claims == nil || len(s.claims.delayed) == 0 {
		return nil, false
	}
	return s.plan(nodeName)
}

// HasUnboundClaims reports whether the pod being scheduled has claims that
// LocalVolumeBinding will bind or provision.
func HasUnboundClaims(cs fwk.CycleState) bool {
	s, err := readState(cs)
	return err == nil && s.claims != nil && len(s.claims.delayed) > 0
}
