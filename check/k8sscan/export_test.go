package k8sscan_test

import "k8s.io/apimachinery/pkg/runtime"

func runtimeToMap(o runtime.Object) (map[string]any, error) {
	return runtime.DefaultUnstructuredConverter.ToUnstructured(o)
}
