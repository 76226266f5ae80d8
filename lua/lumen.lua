--[[
lumen -- the experiment language.

An experiment file returns

    local lumen = require "lumen"
    return lumen.experiment {
      name = "baseline", seed = 42,
      stages = {
        lumen.ingest { csv = lumen.data "labels.csv", size = 300 },
        lumen.normalize_stats {},
      },
    }

* lumen.<stage_name> { params }   a stage entry; underscores in the Lua name
                                  become dashes in the stage name
                                  (lumen.normalize_stats -> "normalize-stats").
                                  Any name works, so out-of-tree plugin stages
                                  need no change here.
* lumen.stage("name", { params }) the same, with the stage name as a string.
  `id = "..."` in the table names this instance (default: the stage name).
* lumen.resnet{...}, lumen.adamw{...}, ...  helper constructors: a copy of the
  table with kind = "<constructor>" (flattened by the runner to
  "optimizer.kind" = "adamw", "optimizer.lr" = ...).
* lumen.data "file"               a path below $LUMEN_DATA (default data/elpv).
* lumen.labels()                  $LUMEN_DATA/data.csv, else labels.csv.
* lumen.warn "text"               a line on stderr.

Experiment files run in a sandbox (runner/lua_bridge.h): no io, no debug,
no os.execute/exit/remove; print writes to stderr.

Stage entries remember the file and line they were written on, so that the
runner's validation errors point there.  Everything else (parameter names,
types, ranges) is checked by the runner against the plugins' declarations.
--]]

local M = { _VERSION = "lumen 1" }

-- What the runner gives this module (and not experiment files, which run
-- in a sandbox without io and debug): exists(path), warn(msg) to stderr,
-- frame(level) -> what, source, line (as debug.getinfo(level, "Sl")).
local host = lumen_host
if host == nil then
  error("lumen.lua is loaded by the runner (it needs lumen_host)", 2)
end

-- File and line of the Lua code `level` frames above the caller of where()
-- (the first Lua frame from there up).  nil, 0 when a tail call erased it,
-- as in `return lumen.experiment { ... }`; the runner then finds the line.
local function where(level)
  local lvl = level + 1
  while true do
    local what, src, line = host.frame(lvl)
    if not what then return nil, 0 end
    src = src or ""
    if what ~= "C" and src:sub(1, 1) == "@" then
      return src:sub(2), line or 0
    end
    lvl = lvl + 1
  end
end

local function copy(t)
  local r = {}
  for k, v in pairs(t) do r[k] = v end
  return r
end

-- Builds a stage entry; `level` is the frame of the user's call.
local function make_stage(name, lua_name, t, level)
  if t == nil then t = {} end
  if type(t) ~= "table" then
    error(("%s expects a table of parameters, got %s"):format(lua_name, type(t)), level + 1)
  end
  local file, line = where(level + 1)
  local params = copy(t)
  local id = params.id
  params.id = nil
  if id ~= nil and type(id) ~= "string" then
    error(("%s: id must be a string, got %s"):format(lua_name, type(id)), level + 1)
  end
  return { __stage = name, __file = file, __line = line, id = id, params = params }
end

function M.stage(name, t)
  if type(name) ~= "string" or name == "" then
    error("lumen.stage: the first argument must be the stage name", 2)
  end
  -- not a tail call: make_stage counts frames up to the user's line
  local entry = make_stage(name, ("lumen.stage(%q, ...)"):format(name), t, 2)
  return entry
end

-- Helper constructors: tagged copies.
local KINDS = { "resnet", "sgd", "adam", "adamw", "constant", "step", "multistep",
                "cosine", "plateau", "bce", "focal" }
for _, kind in ipairs(KINDS) do
  M[kind] = function(t)
    if t == nil then t = {} end
    if type(t) ~= "table" then
      error(("lumen.%s expects a table, got %s"):format(kind, type(t)), 2)
    end
    if t.kind ~= nil then
      error(("lumen.%s: 'kind' is set by the constructor"):format(kind), 2)
    end
    local r = copy(t)
    r.kind = kind
    return r
  end
end

function M.data(name)
  if type(name) ~= "string" or name == "" then
    error("lumen.data expects a file name", 2)
  end
  if name:sub(1, 1) == "/" then return name end
  local base = os.getenv("LUMEN_DATA")
  if base == nil or base == "" then base = "data/elpv" end
  base = base:gsub("/+$", "")
  return base .. "/" .. name
end

-- lumen.labels(): the crack/inactive labels (data.csv below $LUMEN_DATA)
-- when they are there, else ELPV's own labels.csv (the public download:
-- one label, `defective`), saying so on stderr.
function M.labels()
  local csv = M.data("data.csv")
  if host.exists(csv) then return csv end
  local alt = M.data("labels.csv")
  host.warn(("lumen: %s not found; using %s (ELPV's 'defective' label only)"):format(csv, alt))
  return alt
end

-- lumen.cell_types(): ELPV's labels.csv (below $LUMEN_DATA) when it is
-- there, for crossval's / validate's `groups` (mono / poly cells); nil
-- otherwise, so an experiment breaks its scores down by cell type when it
-- can and runs without the breakdown on other data.
function M.cell_types()
  local f = M.data("labels.csv")
  if host.exists(f) then return f end
  return nil
end

-- lumen.warn "text": a line on stderr (as print does; stdout carries the
-- run folder).
function M.warn(msg)
  if type(msg) ~= "string" and type(msg) ~= "number" then
    error(("lumen.warn expects a string, got %s"):format(type(msg)), 2)
  end
  host.warn(tostring(msg))
end

function M.experiment(t)
  if type(t) ~= "table" then
    error(("lumen.experiment expects a table, got %s"):format(type(t)), 2)
  end
  local file, line = where(2)
  local r = copy(t)
  r.__experiment = true
  r.__file = file
  r.__line = line
  return r
end

-- Sweeps ------------------------------------------------------------------
-- lumen.sweep { strategy, seeds, metric, goal, space, stages, ... } is the
-- sweep entry: the stages inside it run once per trial (runner/sweep.h).
function M.sweep(t)
  if type(t) ~= "table" then
    error(("lumen.sweep expects a table, got %s"):format(type(t)), 2)
  end
  local entry = make_stage("sweep", "lumen.sweep", t, 2)
  entry.__sweep = true
  return entry
end

-- lumen.crossval { folds = 5, stages = { lumen.ingest {...}, ... } } is a
-- sweep whose trials are the folds: each (configuration, seed) runs once per
-- fold with <ingest>.split.folds / split.fold set, and the results score
-- every fold at thresholds tuned on the other folds' out-of-fold predictions
-- (runner/crossval.h).  `space` and `seeds` are optional (default: the
-- recipe as written, the experiment's seed); `score = { "crack", ... }`
-- scores those labels only (models may predict more: ingest's aux);
-- `groups = lumen.data("labels.csv")` (or { file = ..., column = ... })
-- also scores every metric per group of images (ELPV: mono / poly);
-- `ensemble = "all"` makes <run>/ensemble.json every configuration's fold
-- models as one predictor, scored as such (default "best": the best
-- configuration's); the rest is lumen.sweep's.
function M.crossval(t)
  if type(t) ~= "table" then
    error(("lumen.crossval expects a table, got %s"):format(type(t)), 2)
  end
  if t.folds == nil then t = copy(t); t.folds = 5 end
  local entry = make_stage("sweep", "lumen.crossval", t, 2)
  entry.__sweep = true
  if entry.id == nil then entry.id = "crossval" end
  if entry.params.metric == nil then entry.params.metric = "cv/f1_mean" end
  return entry
end

-- Samplers for a sweep's space (random and tpe; grid needs lists).
local function sampler(kind, lo, hi, level)
  if type(lo) ~= "number" or type(hi) ~= "number" or not (lo < hi) then
    error(("lumen.%s(lo, hi) needs two numbers with lo < hi"):format(kind), level + 1)
  end
  if kind == "loguniform" and lo <= 0 then
    error("lumen.loguniform(lo, hi) needs 0 < lo", level + 1)
  end
  if kind == "int" and (math.type(lo) ~= "integer" or math.type(hi) ~= "integer") then
    error("lumen.int(lo, hi) needs two integers", level + 1)
  end
  return { __sampler = kind, lo = lo, hi = hi }
end
function M.uniform(lo, hi) return sampler("uniform", lo, hi, 2) end
function M.loguniform(lo, hi) return sampler("loguniform", lo, hi, 2) end
function M.int(lo, hi) return sampler("int", lo, hi, 2) end
-- lumen.choice { a, b, c }: the same as the plain list { a, b, c }.
function M.choice(list)
  if type(list) ~= "table" or #list == 0 then
    error("lumen.choice expects a non-empty list of values", 2)
  end
  return { __sampler = "choice", values = list }
end
-- lumen.variants { {"none", {...}}, {"flips", {...}} }: named alternatives,
-- each the whole parameter table of the stage named by the space key (or,
-- under any other key, a table of "stage.key" = value settings).  The first
-- is the control of the paired comparisons.  A plain table { none = {...},
-- flips = {...} } works too (then in name order).
function M.variants(list)
  if type(list) ~= "table" or #list == 0 then
    error("lumen.variants expects a list of { name, table } pairs", 2)
  end
  local names, values = {}, {}
  for i, v in ipairs(list) do
    if type(v) ~= "table" or type(v[1]) ~= "string" or type(v[2]) ~= "table" then
      error(("lumen.variants: entry %d must be { \"name\", { ... } }"):format(i), 2)
    end
    names[i], values[i] = v[1], v[2]
  end
  return { __sampler = "variants", names = names, values = values }
end
-- lumen.upstream("pretrain", "model/best.safetensors"): inside a sweep's
-- space, a file that a stage before the sweep wrote (it runs once, in the
-- sweep's run folder); each trial gets the real path.
function M.upstream(stage_id, rel)
  if type(stage_id) ~= "string" or type(rel) ~= "string" then
    error("lumen.upstream(stage_id, relative_path) expects two strings", 2)
  end
  return "${sweep_run}/" .. stage_id .. "/" .. rel
end

-- Tracking: tracking = lumen.mlflow { uri = "http://127.0.0.1:5000",
-- experiment = "aug_sweep" } in lumen.experiment { } posts the run to an
-- MLflow server (runner/mlflow.h); the runner checks the keys.
function M.mlflow(t)
  if type(t) ~= "table" then
    error(("lumen.mlflow expects a table, got %s"):format(type(t)), 2)
  end
  local r = copy(t)
  r.kind = "mlflow"
  return r
end

-- Pruners: stop hopeless trials while they train.
function M.asha(t)
  local r = copy(t or {})
  r.kind = "asha"
  return r
end
function M.median(t)
  local r = copy(t or {})
  r.kind = "median"
  return r
end

-- Executors: where a sweep's trials run (runner/executor.h).
-- executor = lumen.slurm { partition = "gpu", time = "02:00:00", cpus = 8,
--   mem = "32G", gres = "gpu:1", max_running = 16, extra = { "--account=pv" } }
-- submits them as Slurm job arrays; the default, lumen["local"] {} (also
-- lumen.processes {} or the string "local"), runs them here.
function M.slurm(t)
  if t ~= nil and type(t) ~= "table" then
    error(("lumen.slurm expects a table, got %s"):format(type(t)), 2)
  end
  local r = copy(t or {})
  r.kind = "slurm"
  return r
end
M["local"] = function(t)
  local r = copy(t or {})
  r.kind = "local"
  return r
end
M.processes = M["local"]

-- Any other lumen.<name> is a stage constructor.
setmetatable(M, {
  __index = function(_, key)
    if type(key) ~= "string" or not key:match("^[%a][%w_]*$") then return nil end
    local name = key:gsub("_", "-")
    return function(t)
      local entry = make_stage(name, "lumen." .. key, t, 2) -- no tail call (frames)
      return entry
    end
  end,
})

return M
