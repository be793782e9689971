package tunnel

// BigBuffersHeld is how many big copy buffers splices hold right now.
func BigBuffersHeld() int64 { return bigHeld.Load() }

// SmallSize is the buffer each direction of a splice waits with.
const SmallSize = smallSize

// SmallBuffersHeld is how many small buffers splices hold right now.
func SmallBuffersHeld() int64 { return smallHeld.Load() }
