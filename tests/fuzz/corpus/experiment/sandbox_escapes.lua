local lumen = require "lumen"
pcall(function() return io.open("/etc/passwd") end)
pcall(os.execute, "true")
pcall(function() return debug.getinfo(1) end)
pcall(require, "nosuchmodule")
pcall(load, "\27Lua")
print("to stderr", string.rep("x", 8))
return lumen.experiment { name = "escapes", stages = { lumen.ingest { csv = lumen.data "data.csv", size = 16 } } }
