-- Argo CD resource actions of a ModelDeployment. Each one only sets (or removes) one of the
-- operator's steering annotations; the operator acts on it and records it in status.
local actions = {}
local phase = nil
if obj.status ~= nil then
  phase = obj.status.phase
end
local paused = obj.metadata.annotations ~= nil and obj.metadata.annotations["rollforward.io/paused"] == "true"
local candidate = phase == "Canary" or phase == "AwaitingApproval" or phase == "Paused" or phase == "Promoting"

actions["approve"] = {["disabled"] = phase ~= "AwaitingApproval"}
actions["rollback"] = {["disabled"] = not candidate}
actions["pause"] = {["disabled"] = paused}
actions["resume"] = {["disabled"] = not paused}
actions["retrain"] = {["disabled"] = phase == "Retraining"}
return actions
