// The JavaScript WebSocket client of the interop cases (jsclients.py): one
// agent for Node's ws and for Chromium's own WebSocket, so that the two
// differ only where their environments do (the lines that test `inNode`).
//
// A command is {op, ...args}; its answer {ok: true, ...result}, or
// {error: "..."} for what the socket did (a refused handshake, a close
// before the message), or {broken: "..."} for the agent's own failure.
// Binary data crosses the JSON boundary as base64; a message is
// {text: "..."} or {binary: "<base64>"}.
//
// In Node, commands are JSON lines on stdin, answers JSON lines on stdout.
// In a browser page, the harness evaluates this source and awaits
// agent(command).

const inNode = typeof window === 'undefined';
const WS = inNode ? require('ws') : WebSocket;

// base64 <-> bytes: Buffer in Node; in a page, Uint8Array's own base64
// (Chromium 140 on; a loop over atob's string took 0.4 s a MiB).
const toBase64 = inNode ? (bytes) => Buffer.from(bytes).toString('base64') : (bytes) => bytes.toBase64();
const fromBase64 = inNode ? (text) => Buffer.from(text, 'base64') : (text) => Uint8Array.fromBase64(text);

class Saw extends Error {} // what the socket did, as opposed to the agent failing

let socket = null;
let events = []; // what the socket did, in order, until a command takes it
let wake = null; // resolves the command waiting for the next event

function happened(event) {
  events.push(event);
  if (wake) {
    wake();
    wake = null;
  }
}

// The first event of `kind` (taken), else the close (left in place, so that
// every later command sees it too), else wait for the next event.
async function next(kind) {
  for (;;) {
    const index = events.findIndex((e) => e.kind === kind);
    if (index >= 0) return events.splice(index, 1)[0];
    const closed = events.find((e) => e.kind === 'close');
    if (closed) return closed;
    await new Promise((resolve) => (wake = resolve));
  }
}

function closedBefore(what, closed) {
  const error = closed.error ? ` (${closed.error})` : '';
  return new Saw(`the WebSocket closed with ${closed.code} ${JSON.stringify(closed.reason)} before ${what}${error}`);
}

function listen(ws) {
  let error = null; // the error event's words, for the close that follows it
  const mine = (event) => ws === socket && happened(event); // not a socket opened before
  const received = (message) => mine({ kind: 'message', message });
  const closed = (code, reason) => mine({ kind: 'close', code, reason, error });
  ws.binaryType = inNode ? 'nodebuffer' : 'arraybuffer';
  ws.onopen = () => mine({ kind: 'open' });
  if (inNode) {
    // ws 8: (data, isBinary), the data a Buffer either way.
    ws.on('message', (data, isBinary) =>
      received(isBinary ? { binary: toBase64(data) } : { text: data.toString('utf8') }));
    ws.on('pong', (data) => mine({ kind: 'pong', data: toBase64(data) }));
    ws.on('error', (e) => (error = e.message));
    ws.on('close', (code, reason) => closed(code, reason.toString('utf8')));
  } else {
    ws.onmessage = ({ data }) =>
      received(typeof data === 'string' ? { text: data } : { binary: toBase64(new Uint8Array(data)) });
    ws.onerror = () => (error = 'an error event'); // a browser's says no more than that
    ws.onclose = ({ code, reason }) => closed(code, reason);
  }
}

// Node's ws: its defaults (it offers permessage-deflate, as a real Node
// client does), the test CA for wss://, and room for the suite's largest
// message (16 MiB). A browser takes no options: it trusts the test key
// from its command line (jsclients.py).
function nodeOptions(ca) {
  const options = { maxPayload: 100 * 1024 * 1024 };
  if (ca) options.ca = require('fs').readFileSync(ca);
  return options;
}

const ops = {
  async open({ url, protocols, ca }) {
    events = [];
    socket = inNode ? new WS(url, protocols, nodeOptions(ca)) : new WS(url, protocols);
    listen(socket);
    const event = await next('open');
    if (event.kind === 'close') throw closedBefore('open', event);
    return { protocol: socket.protocol || null };
  },

  async send({ message }) {
    const data = message.text !== undefined ? message.text : fromBase64(message.binary);
    if (!inNode) return socket.send(data); // a page's send only queues; it has no callback
    await new Promise((resolve, reject) => socket.send(data, (e) => (e ? reject(new Saw(e.message)) : resolve())));
  },

  // Node only: one message, a frame per part; ws keeps the first frame's
  // kind (text for a string, binary for a Buffer) for the continuations.
  async fragments({ parts }) {
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i].text !== undefined ? parts[i].text : fromBase64(parts[i].binary);
      await new Promise((resolve, reject) =>
        socket.send(part, { fin: i === parts.length - 1 }, (e) => (e ? reject(new Saw(e.message)) : resolve())));
    }
  },

  async recv() {
    const event = await next('message');
    if (event.kind === 'close') throw closedBefore('a message', event);
    return { message: event.message };
  },

  async ping({ data }) {
    socket.ping(fromBase64(data)); // Node only: a page cannot ping
    const event = await next('pong');
    if (event.kind === 'close') throw closedBefore('the pong', event);
    return { data: event.data };
  },

  async close({ code, reason }) {
    socket.close(code, reason);
    const event = await next('close');
    // 1006: the connection ended without a close frame.
    if (event.code === 1006) throw closedBefore('a close frame', event);
    return { code: event.code, reason: event.reason };
  },
};

async function agent(command) {
  const { op, ...args } = command;
  if (!ops[op]) return { broken: `no operation ${JSON.stringify(op)}` };
  try {
    return { ok: true, ...(await ops[op](args)) };
  } catch (e) {
    // The socket's own exceptions (a DOMException, ws's Error) are what
    // the client saw; a TypeError or ReferenceError is this agent's fault.
    const ours = e instanceof TypeError || e instanceof ReferenceError || e instanceof SyntaxError;
    return ours ? { broken: e.stack || String(e) } : { error: e.message };
  }
}

async function serveStdin() {
  const lines = require('readline').createInterface({ input: process.stdin });
  for await (const line of lines) {
    process.stdout.write(JSON.stringify(await agent(JSON.parse(line))) + '\n');
  }
}

if (inNode) serveStdin();
