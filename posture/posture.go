package posture

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/bulwark-sec/bulwark/check"
	"github.com/bulwark-sec/bulwark/check/source"
	"github.com/bulwark-sec/bulwark/store"
)

// InventorySuffix marks the store keys of results of snapshot checks, so
// that they are replaced apart from the object's own results.
const InventorySuffix = "#inventory"

// Config sets up an Assessor.
type Config struct {
	ClusterID string
	Engine    *check.Engine
	Store     store.HardeningStore
	// Workers evaluating changed objects (default 2).
	Workers int
	// InventoryDelay debounces snapshot checks after changes (default 1s).
	InventoryDelay time.Duration
	Log            *slog.Logger
}

// Assessor watches a cluster and keeps its hardening results in the store.
type Assessor struct {
	cfg     Config
	client  kubernetes.Interface
	factory informers.SharedInformerFactory
	infs    map[string]cache.SharedIndexInformer // kind -> informer
	queue   workqueue.TypedRateLimitingInterface[qkey]

	mu       sync.Mutex
	evals    map[string]int  // object key -> evaluations, for tests and metrics
	invKeys  map[string]bool // keys with inventory results in the store
	invDirty chan struct{}
}

type qkey struct{ kind, cacheKey string }

// New builds an Assessor; Run starts it.
func New(client kubernetes.Interface, cfg Config) (*Assessor, error) {
	if cfg.Engine == nil || cfg.Store == nil || cfg.ClusterID == "" {
		return nil, fmt.Errorf("posture: engine, store and cluster id are required")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.InventoryDelay <= 0 {
		cfg.InventoryDelay = time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	f := informers.NewSharedInformerFactory(client, 0)
	a := &Assessor{cfg: cfg, client: client, factory: f, evals: map[string]int{}, invKeys: map[string]bool{},
		invDirty: make(chan struct{}, 1),
		queue:    workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[qkey]())}
	a.infs = map[string]cache.SharedIndexInformer{
		"Pod": f.Core().V1().Pods().Informer(), "ReplicationController": f.Core().V1().ReplicationControllers().Informer(),
		"Service": f.Core().V1().Services().Informer(), "ServiceAccount": f.Core().V1().ServiceAccounts().Informer(),
		"Namespace":  f.Core().V1().Namespaces().Informer(),
		"Deployment": f.Apps().V1().Deployments().Informer(), "StatefulSet": f.Apps().V1().StatefulSets().Informer(),
		"DaemonSet": f.Apps().V1().DaemonSets().Informer(), "ReplicaSet": f.Apps().V1().ReplicaSets().Informer(),
		"Job": f.Batch().V1().Jobs().Informer(), "CronJob": f.Batch().V1().CronJobs().Informer(),
		"Ingress": f.Networking().V1().Ingresses().Informer(), "NetworkPolicy": f.Networking().V1().NetworkPolicies().Informer(),
		"Role": f.Rbac().V1().Roles().Informer(), "ClusterRole": f.Rbac().V1().ClusterRoles().Informer(),
		"RoleBinding": f.Rbac().V1().RoleBindings().Informer(), "ClusterRoleBinding": f.Rbac().V1().ClusterRoleBindings().Informer(),
	}
	for kind, inf := range a.infs {
		kind := kind
		enqueue := func(obj any) {
			k, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
			if err == nil {
				a.queue.Add(qkey{kind, k})
			}
			a.markInventory()
		}
		_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: enqueue,
			UpdateFunc: func(oldObj, newObj any) {
				o, _ := meta.Accessor(oldObj)
				n, _ := meta.Accessor(newObj)
				if o != nil && n != nil && o.GetResourceVersion() == n.GetResourceVersion() {
					return // a resync: nothing changed
				}
				enqueue(newObj)
			},
			DeleteFunc: enqueue,
		})
		if err != nil {
			return nil, fmt.Errorf("posture: %s handler: %w", kind, err)
		}
	}
	return a, nil
}

func (a *Assessor) markInventory() {
	select {
	case a.invDirty <- struct{}{}:
	default:
	}
}

// Run watches until ctx ends.
func (a *Assessor) Run(ctx context.Context) error {
	defer a.queue.ShutDown()
	a.factory.Start(ctx.Done())
	defer a.factory.Shutdown()
	for kind, ok := range a.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("posture: cache of %v did not sync", kind)
		}
	}
	a.cfg.Log.Info("posture: caches synced", "cluster", a.cfg.ClusterID)
	var wg sync.WaitGroup
	for i := 0; i < a.cfg.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a.next(ctx) {
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.inventoryLoop(ctx)
	}()
	<-ctx.Done()
	a.queue.ShutDown()
	wg.Wait()
	return nil
}

func (a *Assessor) next(ctx context.Context) bool {
	k, shut := a.queue.Get()
	if shut {
		return false
	}
	defer a.queue.Done(k)
	if err := a.assess(ctx, k); err != nil {
		a.cfg.Log.Warn("posture: assess", "kind", k.kind, "key", k.cacheKey, "err", err)
		a.queue.AddRateLimited(k)
		return true
	}
	a.queue.Forget(k)
	return true
}

func storeKey(kind, cacheKey string) string { return kind + "/" + cacheKey }

// assess evaluates one object and replaces its results.
func (a *Assessor) assess(ctx context.Context, k qkey) error {
	key := storeKey(k.kind, k.cacheKey)
	obj, exists, err := a.infs[k.kind].GetIndexer().GetByKey(k.cacheKey)
	if err != nil {
		return err
	}
	var rows []store.HardeningResult
	if exists && !source.Owned(obj.(runtime.Object)) {
		o, err := check.NewObject(obj.(runtime.Object))
		if err != nil {
			return err
		}
		o.Source = "cluster"
		a.mu.Lock()
		a.evals[key]++
		a.mu.Unlock()
		rows = a.rows(key, a.cfg.Engine.Object(o))
	}
	return a.cfg.Store.ReplaceHardeningResults(ctx, a.cfg.ClusterID, key, rows)
}

func (a *Assessor) rows(key string, rs []check.Result) []store.HardeningResult {
	now := time.Now()
	out := make([]store.HardeningResult, 0, len(rs))
	for _, r := range rs {
		detail, _ := json.Marshal(r)
		out = append(out, store.HardeningResult{ClusterID: a.cfg.ClusterID, ObjectKey: key, Kind: r.Object.Kind,
			Namespace: r.Object.Namespace, Name: r.Object.Name, CheckID: r.CheckID, Container: r.Container, Field: r.Field,
			Severity: r.Severity, Title: r.Title, Message: r.Message, Fix: r.Fix.Text, Detail: detail, UpdatedAt: now})
	}
	return out
}

// inventoryLoop runs the snapshot checks at most once per InventoryDelay
// while objects change.
func (a *Assessor) inventoryLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.invDirty:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(a.cfg.InventoryDelay):
		}
		if err := a.assessInventory(ctx); err != nil && ctx.Err() == nil {
			a.cfg.Log.Warn("posture: snapshot checks", "err", err)
			a.markInventory()
		}
	}
}

func (a *Assessor) assessInventory(ctx context.Context) error {
	var objs []*check.Object
	for _, inf := range a.infs {
		for _, it := range inf.GetStore().List() {
			ro := it.(runtime.Object)
			if source.Owned(ro) {
				continue
			}
			o, err := check.NewObject(ro)
			if err != nil {
				continue
			}
			objs = append(objs, o)
		}
	}
	by := map[string][]check.Result{}
	for _, r := range a.cfg.Engine.AssessInventory(check.NewInventory(objs)) {
		k := r.Object.Kind + "/" + r.Object.Name
		if r.Object.Namespace != "" {
			k = r.Object.Kind + "/" + r.Object.Namespace + "/" + r.Object.Name
		}
		by[k+InventorySuffix] = append(by[k+InventorySuffix], r)
	}
	a.mu.Lock()
	old := a.invKeys
	a.mu.Unlock()
	next := map[string]bool{}
	for k, rs := range by {
		if err := a.cfg.Store.ReplaceHardeningResults(ctx, a.cfg.ClusterID, k, a.rows(k, rs)); err != nil {
			return err
		}
		next[k] = true
	}
	for k := range old {
		if !next[k] {
			if err := a.cfg.Store.ReplaceHardeningResults(ctx, a.cfg.ClusterID, k, nil); err != nil {
				return err
			}
		}
	}
	a.mu.Lock()
	a.invKeys = next
	a.mu.Unlock()
	return nil
}

// Evaluations returns how often the object with store key key ("Kind/ns/name")
// was evaluated by object checks.
func (a *Assessor) Evaluations(key string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.evals[key]
}
