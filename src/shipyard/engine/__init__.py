"""The durable worker: claims due work with a lease, does one step, records it, lets go."""
