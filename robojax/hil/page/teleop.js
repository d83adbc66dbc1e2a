// The teleop page: camera frames and stats in, keys and gamepad out, over one websocket.
"use strict";

const token = new URLSearchParams(location.search).get("token") || "";
const $ = (id) => document.getElementById(id);
const state = {
  seq: 0, takeover: false, pressed: new Set(), axes: [], mapped: new Set(),
  sentAt: new Map(), latencies: [], frames: 0, framesSince: performance.now(), fps: 0,
  status: {}, lastFrameUrl: null, socket: null,
};
window.teleop = state;  // read by tests and benchmarks

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(token)}`);
  socket.binaryType = "blob";
  socket.onopen = () => { $("connection").textContent = "connected"; $("connection").className = "on"; };
  socket.onclose = () => {
    $("connection").textContent = "disconnected: reload to reconnect";
    $("connection").className = "off";
  };
  socket.onmessage = (event) => (typeof event.data === "string" ? onStatus(JSON.parse(event.data)) : onFrame(event.data));
  state.socket = socket;
}

function onFrame(blob) {
  const url = URL.createObjectURL(blob);
  $("frame").src = url;
  if (state.lastFrameUrl) URL.revokeObjectURL(state.lastFrameUrl);
  state.lastFrameUrl = url;
  state.frames += 1;
  const now = performance.now();
  if (now - state.framesSince > 1000) {
    state.fps = (1000 * state.frames) / (now - state.framesSince);
    state.frames = 0;
    state.framesSince = now;
  }
}

function onStatus(status) {
  state.status = status;
  const applied = status.applied_seq ?? -1;
  for (const [seq, sent] of state.sentAt) {  // inputs the env has applied by now
    if (seq <= applied) {
      if (seq === applied) state.latencies.push(performance.now() - sent);
      state.sentAt.delete(seq);
    }
  }
  if (status.keys && state.mapped.size === 0) showLegend(status.keys, status.integrate);
  const set = (id, value) => { if (value !== undefined && value !== null) $(id).textContent = value; };
  set("mode", status.mode);
  set("env-name", status.env_name);
  set("who", status.takeover ? "you" : "policy");
  set("step", status.step);
  set("return", status.return?.toFixed(2));
  set("interventions", status.intervention_steps);
  set("saved", status.episodes_saved !== undefined ? `${status.episodes_saved} / ${status.episodes_target}` : undefined);
  set("action", status.last_action?.join(", "));
  set("fps", state.fps.toFixed(1));
  set("latency", latencyText());
  if (status.counts) set("dropped", `${status.counts.malformed} malformed, ${status.counts.stale} stale`);
  $("frame").classList.toggle("human", !!status.takeover);
  $("takeover").classList.toggle("active", state.takeover);
  if (status.camera_error) { $("camera-error").hidden = false; $("camera-error").textContent = status.camera_error; }
  if (status.num_envs > 1) {
    $("watch-row").hidden = false;
    $("watch").max = status.num_envs - 1;
    $("num-envs").textContent = `of ${status.num_envs}`;
  }
}

function latencyText() {
  if (!state.latencies.length) return "–";
  const sorted = [...state.latencies].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return `${at(0.5).toFixed(0)} / ${at(0.99).toFixed(0)} ms`;
}

function showLegend(keys, integrate) {
  const legend = $("legend");
  legend.textContent = "";
  const what = integrate ? "target" : "action";
  for (const { key, component, amount } of keys) {
    state.mapped.add(key);
    const item = document.createElement("li");
    const size = `${amount > 0 ? "+" : "−"}${Math.abs(amount)}${integrate ? " per step" : ""}`;
    item.textContent = `${key}: ${what}[${component}] ${size}`;
    legend.appendChild(item);
  }
}

function send(message) {
  if (state.socket && state.socket.readyState === WebSocket.OPEN) state.socket.send(JSON.stringify(message));
}

function sendInput() {
  state.seq += 1;
  state.sentAt.set(state.seq, performance.now());
  send({ type: "input", seq: state.seq, keys: [...state.pressed], axes: state.axes, takeover: state.takeover });
}

function setTakeover(on) {
  state.takeover = on;
  if (!on) state.pressed.clear();
  sendInput();
}

window.addEventListener("keydown", (event) => {
  if (event.target.tagName === "INPUT") return;
  if (event.key === " ") { setTakeover(!state.takeover); event.preventDefault(); return; }
  if (event.key === "Enter") { send({ type: "episode", outcome: "success" }); return; }
  if (event.key === "Backspace") { send({ type: "episode", outcome: "failure" }); event.preventDefault(); return; }
  if (!state.mapped.has(event.key) || event.repeat) return;
  event.preventDefault();
  state.pressed.add(event.key);
  state.takeover = true;  // a mapped key takes over
  sendInput();
});

window.addEventListener("keyup", (event) => {
  if (!state.pressed.delete(event.key)) return;
  sendInput();
});

window.addEventListener("blur", () => { if (state.pressed.size) { state.pressed.clear(); sendInput(); } });

$("takeover").addEventListener("click", () => setTakeover(!state.takeover));
$("success").addEventListener("click", () => send({ type: "episode", outcome: "success" }));
$("failure").addEventListener("click", () => send({ type: "episode", outcome: "failure" }));
$("watch").addEventListener("change", (event) => {
  const env = Number.parseInt(event.target.value, 10);
  if (Number.isInteger(env)) { state.takeover = false; state.pressed.clear(); send({ type: "watch", env }); }
  event.target.blur();  // the keys drive the env again
});

// The Gamepad API has no events for sticks: poll it every frame, send on change.
let buttonWasDown = false;
function pollGamepad() {
  const pad = [...(navigator.getGamepads ? navigator.getGamepads() : [])].find((p) => p);
  if (pad) {
    const axes = pad.axes.slice(0, 8).map((a) => Math.max(-1, Math.min(1, a)));
    const moved = axes.some((a, i) => Math.abs(a - (state.axes[i] ?? 0)) > 0.02);
    const down = !!pad.buttons[0]?.pressed;
    if (down && !buttonWasDown) setTakeover(!state.takeover);
    buttonWasDown = down;
    if (moved) {
      state.axes = axes;
      if (axes.some((a) => Math.abs(a) > 0.15)) state.takeover = true;  // a stick takes over
      sendInput();
    }
  }
  requestAnimationFrame(pollGamepad);
}

connect();
requestAnimationFrame(pollGamepad);
