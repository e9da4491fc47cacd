"""The relay: the asyncio WebSocket server around the relay state machine; wiring, limits, health, metrics."""
