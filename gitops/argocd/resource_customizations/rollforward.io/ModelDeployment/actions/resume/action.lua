-- Resume a paused ModelDeployment: rollforward.io/paused becomes "false" (anything but "true"
-- resumes). Setting it rather than deleting it keeps the step visible in the object's history.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["rollforward.io/paused"] = "false"
return obj
