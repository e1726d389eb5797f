package check

// Builtin returns every built-in check: Pod Security Standards, the
// defender data-plane recommendations, CIS section 5 and control-plane
// flags, and exposure checks. The list is new on each call.
func Builtin() []Check {
	var out []Check
	out = append(out, PSSChecks()...)
	out = append(out, DefenderChecks()...)
	out = append(out, CISChecks()...)
	out = append(out, ExposureChecks()...)
	return out
}
