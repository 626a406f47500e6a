-- One-shot request: promote the candidate that passed its canary and waits for Manual approval. The value is unique per request (a UTC
-- timestamp), so the operator honours it exactly once; a repeat within the same second is the
-- same request.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["rollforward.io/approve"] = os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
