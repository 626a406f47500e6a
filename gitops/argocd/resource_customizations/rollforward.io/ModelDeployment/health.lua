-- Argo CD health of a ModelDeployment, from its status conditions (kstatus conventions).
--   Progressing  the operator has not yet reported on the current generation, or children
--                are rolling, or a canary is under way
--   Suspended    a person paused it (rollforward.io/paused), or a passed canary waits for
--                manual approval (rollforward.io/approve)
--   Degraded     Ready=False and nothing is progressing: a variant or the router is down, or
--                the spec is invalid
--   Healthy      Ready=True; drift and retraining are reported in the message, since the
--                champion keeps serving while the operator handles them
local hs = {}

local function condition(conditions, kind)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function message_of(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

local annotations = {}
if obj.metadata ~= nil and obj.metadata.annotations ~= nil then
  annotations = obj.metadata.annotations
end
local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

local generation = obj.metadata.generation
if status.observedGeneration == nil or (generation ~= nil and status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local ready = condition(status.conditions, "Ready")
local progressing = condition(status.conditions, "Progressing")
local drifted = condition(status.conditions, "Drifted")
local phase = status.phase

if annotations["rollforward.io/paused"] == "true" or phase == "Paused" then
  hs.status = "Suspended"
  hs.message = message_of(progressing, "Paused: remove the rollforward.io/paused annotation to resume")
  return hs
end
if phase == "AwaitingApproval" then
  hs.status = "Suspended"
  hs.message = message_of(progressing, "The canary passed: approve with the rollforward.io/approve annotation")
  return hs
end

if ready == nil or ready.status == "Unknown" then
  hs.status = "Progressing"
  hs.message = message_of(ready, "Waiting for the Ready condition")
  return hs
end

if progressing ~= nil and progressing.status == "True" then
  hs.status = "Progressing"
  hs.message = message_of(progressing, "Progressing")
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
  if drifted ~= nil and drifted.status == "True" then
    hs.message = "Serving; drift detected: " .. message_of(drifted, "the predicted-label distribution moved")
  else
    hs.message = message_of(ready, "Serving")
  end
  return hs
end

hs.status = "Degraded"
hs.message = message_of(ready, "Not ready")
return hs
