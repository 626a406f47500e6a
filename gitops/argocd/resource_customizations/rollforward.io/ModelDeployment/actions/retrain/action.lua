-- One-shot request: start a retraining Job now (within the spec's cooldown and daily limit). The value is unique per request (a UTC
-- timestamp), so the operator honours it exactly once; a repeat within the same second is the
-- same request.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["rollforward.io/retrain"] = os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
