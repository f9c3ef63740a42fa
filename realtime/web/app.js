// emoview serve: live bars and 60 s charts per face from /events, recording, and (with
// --browser-camera) this browser's camera sent to POST /frame, newest frame only, one request at a time.
"use strict";

const HISTORY_S = 60;        // what a chart shows, and how long a face that left keeps its card
const GAP_S = 2.5;           // a longer pause in a face's points (it was away) breaks its lines

// What the page knows, also for scripts and tests: window.emoview.
const state = { session: null, updates: 0, last: null, faces: new Map(), sent: 0, roundTripsMs: [], errors: 0 };
window.emoview = state;

const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function say(text) { $("message").textContent = text || ""; }

async function main() {
  state.session = await (await fetch("/session.json")).json();
  $("source").textContent = state.session.source;
  $("record").disabled = false;
  $("record").addEventListener("click", toggleRecording);
  const events = new EventSource("/events");
  events.onmessage = (event) => onUpdate(JSON.parse(event.data));
  events.onerror = () => say("connection to the server lost; retrying…");
  events.onopen = () => say("");
  if (state.session.browser_camera) sendCamera();
}

function onUpdate(update) {
  state.updates += 1;
  state.last = update;
  $("fps").textContent = update.fps?.toFixed(1) ?? "–";
  $("latency").textContent = update.latency_ms?.toFixed(0) ?? "–";
  $("face-count").textContent = update.faces ? update.faces.length : "–";
  $("face-word").textContent = update.faces?.length === 1 ? "face" : "faces";
  $("state").textContent = update.state;
  $("state").className = "state " + update.state;
  if (update.error) say(update.error);
  showRecording(update.recording);
  for (const face of update.faces || []) addPoint(face, update.t);
  forgetOldFaces(update.t);
  $("no-face").hidden = state.faces.size > 0;
  for (const [id, face] of state.faces) {
    face.card.classList.toggle("away", !(update.faces || []).some((f) => f.id === id));
    drawChart(face, update.t);
  }
}

function addPoint(result, t) {
  let face = state.faces.get(result.id);
  if (!face) face = newFace(result.id);
  const labels = state.session.labels;
  face.history.push({ t, p: labels.map((name) => result.probabilities[name]) });
  while (face.history.length && face.history[0].t < t - HISTORY_S) face.history.shift();
  face.lastSeen = t;
  face.card.querySelector(".face-label").textContent = `${result.label} ${(result.confidence * 100).toFixed(0)}%`;
  labels.forEach((name, i) => {
    const p = result.probabilities[name];
    face.bars[i].fill.style.width = (p * 100).toFixed(1) + "%";
    face.bars[i].value.textContent = (p * 100).toFixed(0) + "%";
    face.bars[i].name.classList.toggle("top", name === result.label);
    face.bars[i].fill.parentElement.dataset.value = p.toFixed(4);
  });
}

function newFace(id) {
  const card = $("face-card").content.firstElementChild.cloneNode(true);
  card.dataset.face = id;
  card.querySelector(".face-id").textContent = "#" + id;
  const bars = [];
  const legend = card.querySelector(".legend");
  for (const name of state.session.labels) {
    const colour = state.session.colours[name];
    const label = document.createElement("span");
    label.className = "name";
    label.textContent = name;
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.dataset.label = name;
    const fill = document.createElement("i");
    fill.style.background = colour;
    bar.append(fill);
    const value = document.createElement("span");
    value.className = "value";
    card.querySelector(".bars").append(label, bar, value);
    bars.push({ name: label, fill, value });
    const key = document.createElement("span");
    key.innerHTML = `<i style="background:${colour}"></i>${name}`;
    legend.append(key);
  }
  $("faces").append(card);
  const face = { id, card, bars, history: [], lastSeen: 0, canvas: card.querySelector(".chart") };
  state.faces.set(id, face);
  return face;
}

function forgetOldFaces(t) {
  for (const [id, face] of state.faces) {
    if (face.lastSeen < t - HISTORY_S) {  // gone for a minute
      face.card.remove();
      state.faces.delete(id);
    }
  }
}

function drawChart(face, now) {
  const canvas = face.canvas;
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, left = 30, bottom = 16, top = 6;
  const x = (t) => left + (w - left - 4) * (1 - (now - t) / HISTORY_S);
  const y = (p) => top + (h - top - bottom) * (1 - p);
  ctx.clearRect(0, 0, w, h);
  ctx.font = "10px system-ui, sans-serif";
  ctx.fillStyle = "#888";
  ctx.strokeStyle = "#333";
  ctx.lineWidth = 1;
  for (const p of [0, 0.5, 1]) {
    ctx.beginPath(); ctx.moveTo(left, y(p)); ctx.lineTo(w - 4, y(p)); ctx.stroke();
    ctx.fillText(p.toFixed(1), 4, y(p) + 3);
  }
  ctx.textAlign = "center";
  for (let s = 10; s <= HISTORY_S; s += 10) ctx.fillText(`-${s}s`, x(now - s), h - 3);
  ctx.textAlign = "right";
  ctx.fillText("now", w - 4, h - 3);
  ctx.textAlign = "left";
  ctx.lineWidth = 1.8;
  state.session.labels.forEach((name, i) => {
    ctx.strokeStyle = state.session.colours[name];
    ctx.beginPath();
    let previous = null;
    for (const point of face.history) {
      if (previous === null || point.t - previous > GAP_S) ctx.moveTo(x(point.t), y(point.p[i]));
      else ctx.lineTo(x(point.t), y(point.p[i]));
      previous = point.t;
    }
    ctx.stroke();
  });
}

function showRecording(path) {
  const button = $("record");
  button.classList.toggle("recording", Boolean(path));
  button.textContent = path ? "■ Stop recording" : "● Record";
  button.title = path ? `recording to ${path} on the server` : "record the annotated frames to an H.264 mp4 on the server";
}

async function toggleRecording() {
  const button = $("record");
  const action = button.classList.contains("recording") ? "stop" : "start";
  button.disabled = true;
  try {
    const response = await fetch(`/record/${action}`, { method: "POST" });
    const body = await response.json();
    if (!response.ok) say(body.error);
    else if (action === "start") { showRecording(body.recording); say(`recording to ${body.recording} on the server`); }
    else { showRecording(null); say(`saved ${body.frames} frames to ${body.path} on the server`); }
  } catch (error) {
    say(`recording: ${error}`);
  } finally {
    button.disabled = false;
  }
}

async function sendCamera() {
  const status = $("camera");
  status.hidden = false;
  if (!navigator.mediaDevices?.getUserMedia) {
    say("this browser gives the camera only to https:// pages or localhost: open the page through an SSH tunnel " +
        "(ssh -L 8000:localhost:8000 SERVER) or start emoview serve with --ssl-certfile and --ssl-keyfile");
    return;
  }
  let video;
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
    video = document.createElement("video");
    video.muted = true;
    video.playsInline = true;
    video.srcObject = stream;
    await video.play();
  } catch (error) {
    say(`no camera: ${error.name === "NotAllowedError" ? "permission denied; allow the camera and reload" : error.message}`);
    return;
  }
  const canvas = document.createElement("canvas");
  // The camera's newest frame number, kept current by the browser; without requestVideoFrameCallback
  // a frame is taken every 30 ms.
  let presented = 0, wake = null;
  const watch = (now, metadata) => {
    presented = metadata.presentedFrames;
    if (wake) { wake(); wake = null; }
    video.requestVideoFrameCallback(watch);
  };
  if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(watch);
  const newFrameAfter = async (sent) => {
    if (!video.requestVideoFrameCallback) { await sleep(30); return sent + 1; }
    while (presented === sent) await new Promise((resolve) => { wake = resolve; });
    return presented;
  };
  // One request in flight: the next frame is taken when the answer is back (at once if the camera
  // has a new one by then), so a slow network or server skips camera frames instead of queueing them.
  let sent = -1;
  for (;;) {
    sent = await newFrameAfter(sent);
    if (!video.videoWidth) continue;
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    const jpeg = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.85));
    const started = performance.now();
    try {
      const response = await fetch("/frame", { method: "POST", body: jpeg, headers: { "Content-Type": "image/jpeg" } });
      const body = await response.json();
      if (!response.ok) { state.errors += 1; say(body.error); await sleep(1000); continue; }
      state.sent += 1;
      state.roundTripsMs.push(performance.now() - started);
      if (state.roundTripsMs.length > 300) state.roundTripsMs.shift();
      status.textContent = `camera ${canvas.width}×${canvas.height}: ${state.sent} frames sent, ` +
        `round trip ${state.roundTripsMs[state.roundTripsMs.length - 1].toFixed(0)} ms`;
    } catch (error) {
      state.errors += 1;
      say(`sending frames: ${error}; retrying`);
      await sleep(1000);
    }
  }
}

main().catch((error) => say(`cannot start: ${error}`));
