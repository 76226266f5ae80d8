local lumen = require "lumen"
local ok = pcall(function() while true do end end)
while true do end
return lumen.experiment { name = "loop", stages = {} }
