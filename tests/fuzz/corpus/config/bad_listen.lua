server { listen = "x" }
