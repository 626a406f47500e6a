-- One-shot request: abort the canary under way and give the champion all the traffic. The value is unique per request (a UTC
-- timestamp), so the operator honours it exactly once; a repeat within the same second is the
-- same request.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["rollforward.io/rollback"] = os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
