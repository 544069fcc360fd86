// The front end of DoodleCanvas (canvas.py): an anywidget ES module.
//
// Strokes are drawn here, in the browser, so drawing stays smooth while the kernel is busy
// colouring the previous drawing. Python hears about the drawing once per stroke: when the pen
// lifts, the canvas is encoded as a PNG and written to the synced trait `drawing_png`.
// Synced traits are the only channel between the two sides (no custom messages):
//   JS -> Python: drawing_png, strokes, generate_requests, and the controls (pen_width, tool, live)
//   Python -> JS: result_png, background_png + load_requests (a loaded doodle), status, clear_requests,
//                 and the controls

const BUTTON = (label, title) => {
  const b = document.createElement("button");
  b.textContent = label;
  b.title = title;
  b.className = "doodle-button";
  return b;
};

function bytesToUrl(value) {
  // Python `bytes` arrive as a DataView; an empty value means "no image".
  if (!value || value.byteLength === 0) return null;
  const buffer = value.buffer ? value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength) : value;
  return URL.createObjectURL(new Blob([buffer], { type: "image/png" }));
}

function render({ model, el }) {
  const size = model.get("size");
  const root = document.createElement("div");
  root.className = "doodle-canvas";

  // ---- toolbar
  const bar = document.createElement("div");
  bar.className = "doodle-toolbar";
  const pen = BUTTON("✏ Pen", "draw black strokes");
  const eraser = BUTTON("⌫ Eraser", "erase (draws white)");
  const width = document.createElement("input");
  Object.assign(width, { type: "range", min: 1, max: 24, step: 1, title: "pen width (px)" });
  width.className = "doodle-width";
  const widthLabel = document.createElement("span");
  widthLabel.className = "doodle-width-label";
  const undo = BUTTON("↶ Undo", "remove the last stroke");
  const clear = BUTTON("✕ Clear", "start again");
  const liveBox = document.createElement("label");
  liveBox.className = "doodle-live";
  const live = document.createElement("input");
  live.type = "checkbox";
  liveBox.append(live, document.createTextNode(" live"));
  liveBox.title = "regenerate after every stroke";
  const generate = BUTTON("▶ Generate", "colour the drawing with the generator");
  generate.classList.add("doodle-generate");
  bar.append(pen, eraser, width, widthLabel, undo, clear, liveBox, generate);

  // ---- drawing (left) and result (right)
  const panels = document.createElement("div");
  panels.className = "doodle-panels";
  const canvas = document.createElement("canvas");
  canvas.width = size;
  canvas.height = size;
  canvas.className = "doodle-drawing";
  canvas.style.width = `${size}px`;
  canvas.style.height = `${size}px`;
  const result = document.createElement("img");
  result.className = "doodle-result";
  result.alt = "generated image";
  result.style.width = `${size}px`;
  result.style.height = `${size}px`;
  panels.append(canvas, result);

  const status = document.createElement("div");
  status.className = "doodle-status";
  root.append(bar, panels, status);
  el.appendChild(root);

  const ctx = canvas.getContext("2d");
  let strokes = [];      // [{tool, width, points: [[x, y], ...]}], replayed on undo
  let background = null; // an Image loaded from Python (load_image), drawn under the strokes
  let current = null;    // the stroke being drawn

  function paintStroke(s) {
    ctx.strokeStyle = s.tool === "eraser" ? "#ffffff" : "#000000";
    ctx.fillStyle = ctx.strokeStyle;
    ctx.lineWidth = s.width;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    const p = s.points;
    if (p.length === 1) { // a dot
      ctx.beginPath();
      ctx.arc(p[0][0], p[0][1], s.width / 2, 0, 2 * Math.PI);
      ctx.fill();
      return;
    }
    ctx.beginPath();
    ctx.moveTo(p[0][0], p[0][1]);
    for (let i = 1; i < p.length; i++) ctx.lineTo(p[i][0], p[i][1]);
    ctx.stroke();
  }

  function redraw() {
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, size, size);
    if (background) ctx.drawImage(background, 0, 0, size, size);
    for (const s of strokes) paintStroke(s);
  }

  function send() {
    // One PNG per finished stroke (and per undo/clear): the only time Python hears of drawing.
    // toDataURL, not toBlob: Chromium runs toBlob's encoder only when the page is idle (forced
    // after 1 s), so pen-up -> result took ~1 s and a quick Shift+Enter missed the last stroke.
    // toDataURL encodes now (stroke end -> result ~0.1 s measured in headless Chromium).
    const base64 = canvas.toDataURL("image/png").split(",")[1];
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    model.set("drawing_png", new DataView(bytes.buffer));
    model.set("strokes", strokes.length);
    model.save_changes();
  }

  function position(event) {
    const r = canvas.getBoundingClientRect();
    return [(event.clientX - r.left) * size / r.width, (event.clientY - r.top) * size / r.height];
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    canvas.setPointerCapture(event.pointerId);
    current = { tool: model.get("tool"), width: model.get("pen_width"), points: [position(event)] };
    paintStroke(current);
    event.preventDefault();
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!current) return;
    // Coalesced events: every sample the pointer produced since the last frame, for smooth curves.
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const e of events.length ? events : [event]) {
      const last = current.points[current.points.length - 1];
      const next = position(e);
      current.points.push(next);
      paintStroke({ ...current, points: [last, next] });
    }
  });
  const finish = () => {
    if (!current) return;
    strokes.push(current);
    current = null;
    send();
  };
  canvas.addEventListener("pointerup", finish);
  canvas.addEventListener("pointercancel", finish);

  // ---- controls -> model
  pen.addEventListener("click", () => { model.set("tool", "pen"); model.save_changes(); });
  eraser.addEventListener("click", () => { model.set("tool", "eraser"); model.save_changes(); });
  width.addEventListener("input", () => { model.set("pen_width", Number(width.value)); model.save_changes(); });
  live.addEventListener("change", () => { model.set("live", live.checked); model.save_changes(); });
  undo.addEventListener("click", () => {
    if (!strokes.length) return;
    strokes.pop();
    redraw();
    send();
  });
  function wipe() {
    strokes = [];
    background = null;
    redraw();
  }
  clear.addEventListener("click", () => {
    wipe();
    model.set("background_png", new DataView(new ArrayBuffer(0)));
    model.set("drawing_png", new DataView(new ArrayBuffer(0)));
    model.set("strokes", 0);
    model.save_changes();
  });
  generate.addEventListener("click", () => {
    model.set("generate_requests", model.get("generate_requests") + 1);
    model.save_changes();
  });

  // ---- model -> view
  function showControls() {
    const tool = model.get("tool");
    pen.classList.toggle("doodle-active", tool === "pen");
    eraser.classList.toggle("doodle-active", tool === "eraser");
    width.value = model.get("pen_width");
    widthLabel.textContent = `${model.get("pen_width")} px`;
    live.checked = model.get("live");
  }
  let resultUrl = null;
  function showResult() {
    if (resultUrl) URL.revokeObjectURL(resultUrl);
    resultUrl = bytesToUrl(model.get("result_png"));
    if (resultUrl) result.src = resultUrl;
    else result.removeAttribute("src");
    result.classList.toggle("doodle-empty", !resultUrl);
  }
  function showBackground(fallbackToDrawing = false) {
    // A second view of the same widget starts from the drawing Python already has.
    const url = bytesToUrl(model.get("background_png")) ||
      (fallbackToDrawing === true ? bytesToUrl(model.get("drawing_png")) : null);
    if (!url) return; // cleared: strokes stay as they are
    const image = new Image();
    image.onload = () => {
      background = image;
      strokes = []; // a loaded doodle replaces the drawing
      redraw();
      URL.revokeObjectURL(url);
      root.dataset.loaded = String(Number(root.dataset.loaded || 0) + 1); // for tests: it is on screen
    };
    image.src = url;
  }
  const showStatus = () => { status.textContent = model.get("status"); };

  model.on("change:tool", showControls);
  model.on("change:pen_width", showControls);
  model.on("change:live", showControls);
  model.on("change:result_png", showResult);
  model.on("change:load_requests", showBackground); // not background_png: the same doodle twice is no change
  model.on("change:status", showStatus);
  model.on("change:clear_requests", wipe);

  redraw();
  showControls();
  showResult();
  showBackground(true);
  showStatus();
  return () => { if (resultUrl) URL.revokeObjectURL(resultUrl); };
}

export default { render };
