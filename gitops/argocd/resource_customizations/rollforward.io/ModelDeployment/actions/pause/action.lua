-- Level request: while rollforward.io/paused is "true" the rollout and retraining make no
-- further step (the models keep serving). The resume action removes it.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["rollforward.io/paused"] = "true"
return obj
