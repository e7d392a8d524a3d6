local t = {}
for i = 1, 10 do t[i] = string.rep("a", i) end
server { listen = "127.0.0.1:25", domains = t }
