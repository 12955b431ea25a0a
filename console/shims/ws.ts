// The SDK falls back to the `ws` package outside browsers; in the browser bundle it is the browser's WebSocket.
export default globalThis.WebSocket;
