# rwkv_engine sources (owned by the engine core)
