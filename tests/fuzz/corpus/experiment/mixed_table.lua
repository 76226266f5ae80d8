local lumen = require "lumen"
local t = { 1, 2, nil, 4, x = 1 }
local r = {} ; r[1] = r
return lumen.experiment { name = "m", stages = { lumen.ingest { csv = "x.csv", split = t, exclude = r } } }
