local lumen = require "lumen"
local t = setmetatable({}, { __index = function(t, k) return k end })
error({ code = t.x })
