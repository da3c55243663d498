// Package framework runs Berth's integration tests against a real,
// in-process Kubernetes control plane, started and stopped by the tests
// themselves (no binaries, no cluster):
//
//   - an embedded etcd (go.etcd.io/etcd/server/v3/embed) and a real
//     kube-apiserver with its default admission plugins (ServiceAccount,
//     TaintNodesByCondition, StorageObjectInUseProtection,
//     DefaultStorageClass, DefaultTolerationSeconds, ...), plus the
//     serviceaccount and namespace controllers that a real cluster always
//     runs and these plugins rely on (ControlPlane, controlplane.go);
//   - kube-controller-manager controllers from k8s.io/kubernetes, each
//     startable on demand with test-friendly periods: PV binder, PVC and PV
//     protection, StatefulSet, garbage collector, node lifecycle, taint
//     eviction, pod GC (Controller, controllers.go);
//   - a simulated kubelet per test (package simkubelet): Leases, Ready
//     condition, pods Running, Stop/Resume of single nodes;
//   - the Berth scheduler started exactly like cmd/scheduler
//     (options.NewOptions, --config=manifests/config/scheduler-config.yaml,
//     app.Setup with plugins.Options(), app.Run), stoppable and restartable,
//     or with another configuration such as the in-tree default profile
//     (StartScheduler, scheduler.go);
//   - a FakeProvisioner for dynamically provisioned claims, and helpers for
//     CSIDriver/CSIStorageCapacity objects (provisioner.go, storage.go);
//   - object helpers (nodes.go, storage.go, workloads.go) and wait helpers
//     built on wait.PollUntilContextTimeout (wait.go).
//
// # Usage
//
// One control plane is shared by all tests of a package:
//
//	func TestMain(m *testing.M) {
//		framework.Main(m, framework.MainOptions{})
//	}
//
//	func TestTightestFit(t *testing.T) {
//		e := framework.NewEnv(t) // namespace, unique names, kubelet, cleanup
//		e.StartControllers(framework.PersistentVolumeBinder)
//		e.StartScheduler()
//		node := e.CreateNode(framework.NodeOptions{Name: e.Name("n1")})
//		sc := e.CreateStorageClass(framework.StorageClassOptions{Name: e.Name("local")})
//		pv := e.CreateLocalPV(framework.LocalPVOptions{Name: e.Name("pv"),
//			Hostname: framework.Hostname(node), StorageClass: sc.Name, Capacity: "10Gi"})
//		e.CreatePVC(framework.PVCOptions{Name: "data", StorageClass: sc.Name, Request: "8Gi"})
//		e.CreatePod(framework.PodOptions{Name: "app", PVCs: []string{"data"}})
//		e.WaitForPodScheduledTo("app", node.Name)
//		e.WaitForPVCBoundTo("data", pv.Name)
//	}
//
// Isolation: each Env has its own namespace and an ID; build names of
// cluster-scoped objects (nodes, PVs, StorageClasses) with Env.Name so that
// tests never collide, and the Env's cleanup deletes everything it created.
// Controllers and schedulers started through an Env (or with a *testing.T)
// stop when the test ends. Two instances of one controller must not run at
// once against the same control plane, so tests that start controllers must
// not call t.Parallel (alternatively start them once for the package with
// MainOptions.Controllers).
//
// Logging: components log only errors unless BERTH_INTEGRATION_V is set
// (see VerbosityEnv).
package framework
