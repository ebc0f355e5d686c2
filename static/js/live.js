// Live updates: a websocket per purpose that reconnects by itself and drives the status dot.

const status = document.getElementById("live-status");
let openSockets = 0;
let knownSockets = 0;

function showStatus() {
  if (!status) return;
  const text = status.querySelector(".text");
  if (knownSockets === 0) {
    status.className = "live-status hidden";
  } else if (openSockets === knownSockets) {
    status.className = "live-status on";
    text.textContent = "live";
  } else {
    status.className = "live-status off";
    text.textContent = "reconnecting…";
  }
}
showStatus();

export class Socket {
  constructor(path, { onOpen, onMessage, onClose } = {}) {
    this.path = path;
    this.onOpen = onOpen;
    this.onMessage = onMessage;
    this.onClose = onClose;
    this.closed = false;
    this.delay = 500;
    this.ws = null;
    knownSockets += 1;
    this.connect();
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + this.path);
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      openSockets += 1;
      this.delay = 500;
      showStatus();
      if (this.onOpen) this.onOpen(this);
    };
    ws.onmessage = (event) => {
      if (this.onMessage) this.onMessage(JSON.parse(event.data), this);
    };
    ws.onclose = (event) => {
      if (opened) openSockets -= 1;
      showStatus();
      if (this.onClose) this.onClose(event, this);
      if (this.closed || event.code === 4401) return;
      setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 8000);
    };
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  close() {
    this.closed = true;
    knownSockets -= 1;
    if (this.ws) this.ws.close();
    showStatus();
  }
}

// The page's live feed: subscribe to "events", "stats", "lag", "topic:<name>"; handlers by type.
export function live(subscribe, handlers, extra = {}) {
  return new Socket("/ws/live/", {
    onOpen: (socket) => socket.send({ subscribe, ...extra }),
    onMessage: (message) => {
      const handler = handlers[message.type];
      if (handler) handler(message);
    },
  });
}

export function pageData() {
  const element = document.getElementById("page-data");
  return element ? JSON.parse(element.textContent) : {};
}
