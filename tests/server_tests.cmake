# Server tests (unit and end to end over loopback gRPC).
