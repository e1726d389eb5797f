package check

import (
	"fmt"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
)

// PodTemplate is the pod a workload runs: its metadata, its spec and the
// field path of the spec from the object's root.
type PodTemplate struct {
	Meta *metav1.ObjectMeta
	Spec *corev1.PodSpec
	// Path is "spec" for a Pod, "spec.template.spec" for a Deployment,
	// "spec.jobTemplate.spec.template.spec" for a CronJob.
	Path string
}

// Object is one Kubernetes object as checks see it. Build it with NewObject.
type Object struct {
	Ref  ObjectRef
	Meta metav1.Object
	// Typed is the object from k8s.io/api, or *unstructured.Unstructured for
	// kinds the client-go scheme does not know.
	Typed runtime.Object
	// Pod is the pod template of workload kinds, nil otherwise.
	Pod *PodTemplate
	// Source is where the object came from (file and document), if known.
	Source string
	// OldObject and Request are set by admission (the object before an
	// update, the AdmissionRequest) for CEL checks; nil elsewhere.
	OldObject map[string]any
	Request   map[string]any

	once sync.Once
	un   map[string]any
	err  error
}

// NewObject wraps obj. Its kind comes from its TypeMeta or, when that is
// empty (objects from informers), from the client-go scheme.
func NewObject(obj runtime.Object) (*Object, error) {
	if obj == nil {
		return nil, fmt.Errorf("check: nil object")
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, fmt.Errorf("check: object %T has no metadata: %w", obj, err)
	}
	gvk := obj.GetObjectKind().GroupVersionKind()
	if gvk.Kind == "" {
		kinds, _, err := scheme.Scheme.ObjectKinds(obj)
		if err != nil || len(kinds) == 0 {
			return nil, fmt.Errorf("check: unknown kind of %T: %w", obj, err)
		}
		gvk = kinds[0]
	}
	o := &Object{
		Ref: ObjectRef{
			APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind,
			Namespace: m.GetNamespace(), Name: m.GetName(),
		},
		Meta:  m,
		Typed: obj,
		Pod:   podTemplateOf(obj),
	}
	if o.Ref.Name == "" && m.GetGenerateName() != "" {
		o.Ref.Name = m.GetGenerateName()
	}
	return o, nil
}

// Unstructured returns the object as JSON-like maps, computed once.
func (o *Object) Unstructured() (map[string]any, error) {
	o.once.Do(func() {
		if u, ok := o.Typed.(*unstructured.Unstructured); ok {
			o.un = u.Object
			return
		}
		o.un, o.err = runtime.DefaultUnstructuredConverter.ToUnstructured(o.Typed)
		if o.err == nil {
			o.un["apiVersion"], o.un["kind"] = o.Ref.APIVersion, o.Ref.Kind
		}
	})
	return o.un, o.err
}

func podTemplateOf(obj runtime.Object) *PodTemplate {
	switch x := obj.(type) {
	case *corev1.Pod:
		return &PodTemplate{&x.ObjectMeta, &x.Spec, "spec"}
	case *corev1.PodTemplate:
		return &PodTemplate{&x.Template.ObjectMeta, &x.Template.Spec, "template.spec"}
	case *corev1.ReplicationController:
		if x.Spec.Template == nil {
			return nil
		}
		return &PodTemplate{&x.Spec.Template.ObjectMeta, &x.Spec.Template.Spec, "spec.template.spec"}
	case *appsv1.Deployment:
		return &PodTemplate{&x.Spec.Template.ObjectMeta, &x.Spec.Template.Spec, "spec.template.spec"}
	case *appsv1.StatefulSet:
		return &PodTemplate{&x.Spec.Template.ObjectMeta, &x.Spec.Template.Spec, "spec.template.spec"}
	case *appsv1.DaemonSet:
		return &PodTemplate{&x.Spec.Template.ObjectMeta, &x.Spec.Template.Spec, "spec.template.spec"}
	case *appsv1.ReplicaSet:
		return &PodTemplate{&x.Spec.Template.ObjectMeta, &x.Spec.Template.Spec, "spec.template.spec"}
	case *batchv1.Job:
		return &PodTemplate{&x.Spec.Template.ObjectMeta, &x.Spec.Template.Spec, "spec.template.spec"}
	case *batchv1.CronJob:
		t := &x.Spec.JobTemplate.Spec.Template
		return &PodTemplate{&t.ObjectMeta, &t.Spec, "spec.jobTemplate.spec.template.spec"}
	}
	return nil
}

// containerRef is one container of a pod spec with its field path.
type containerRef struct {
	C    *corev1.Container
	Path string // "spec.containers[0]"
}

// containers lists init, regular and ephemeral containers with their paths.
func (p *PodTemplate) containers() []containerRef {
	out := make([]containerRef, 0, len(p.Spec.InitContainers)+len(p.Spec.Containers))
	for i := range p.Spec.InitContainers {
		out = append(out, containerRef{&p.Spec.InitContainers[i], fmt.Sprintf("%s.initContainers[%d]", p.Path, i)})
	}
	for i := range p.Spec.Containers {
		out = append(out, containerRef{&p.Spec.Containers[i], fmt.Sprintf("%s.containers[%d]", p.Path, i)})
	}
	for i := range p.Spec.EphemeralContainers {
		out = append(out, containerRef{(*corev1.Container)(&p.Spec.EphemeralContainers[i].EphemeralContainerCommon),
			fmt.Sprintf("%s.ephemeralContainers[%d]", p.Path, i)})
	}
	return out
}

// NewManifestObject wraps an object read from a manifest, first applying
// the apiserver defaults that change a verdict, so that a manifest is
// judged as the cluster will judge the object it becomes: a volume with no
// source is an emptyDir (as the apiserver defaults it). obj is modified.
func NewManifestObject(obj runtime.Object, source string) (*Object, error) {
	if p := podTemplateOf(obj); p != nil {
		for i := range p.Spec.Volumes {
			if p.Spec.Volumes[i].VolumeSource == (corev1.VolumeSource{}) {
				p.Spec.Volumes[i].EmptyDir = &corev1.EmptyDirVolumeSource{}
			}
		}
	}
	o, err := NewObject(obj)
	if err != nil {
		return nil, err
	}
	o.Source = source
	return o, nil
}
