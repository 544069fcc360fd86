// The front end of DoodleCanvas (canvas.py): an anywidget ES module.
//
// The drawing lives in the synced model, not in this view: `strokes` (each {tool, width, points}),
// `undone` (what redo brings back) and `background_png` (an opened or loaded doodle). A view only
// paints that state, so a reload, a second view of the same canvas and Python all see one drawing.
// Strokes are painted here, in the browser, so the pen stays smooth while the kernel is busy; Python
// hears of the drawing once per stroke, as a PNG in `drawing_png`, encoded at the model's pixel size.
// Synced traits are the only channel between the two sides (no custom messages).

const BUTTON = (label, title) => {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.title = title;
  b.className = "doodle-button";
  return b;
};

function viewToBytes(value) {
  // Python `bytes` arrive as a DataView (or an ArrayBuffer); an empty value means "no image".
  if (!value || value.byteLength === 0) return null;
  return value.buffer ? value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength) : value;
}

function bytesToUrl(value) {
  const bytes = viewToBytes(value);
  return bytes ? URL.createObjectURL(new Blob([bytes], { type: "image/png" })) : null;
}

const EMPTY = () => new DataView(new ArrayBuffer(0));

function pngBytes(canvas) {
  // toDataURL, not toBlob: Chromium runs toBlob's encoder only when the page is idle (forced after
  // 1 s), so pen-up -> result took ~1 s and a quick Shift+Enter missed the last stroke.
  const base64 = canvas.toDataURL("image/png").split(",")[1];
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  return new DataView(bytes.buffer);
}

function paintStroke(ctx, s) {
  if (!s || !Array.isArray(s.points) || !s.points.length || !(s.width > 0)) return; // Python validates; never throw here
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

function paintDrawing(ctx, size, background, strokes) {
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, size, size);
  if (background) ctx.drawImage(background, 0, 0, size, size);
  for (const s of strokes) paintStroke(ctx, s);
}

function render({ model, el }) {
  const size = model.get("size");
  const root = document.createElement("div");
  root.className = "doodle-canvas";
  root.tabIndex = 0; // focusable: Ctrl+Z / Ctrl+Shift+Z / Ctrl+Y work once the pen touched the canvas
  root.style.setProperty("--doodle-size", `${size}px`);

  // ---- toolbar
  const bar = document.createElement("div");
  bar.className = "doodle-toolbar";
  const pen = BUTTON("✏ Pen", "draw black strokes");
  const eraser = BUTTON("◻ Eraser", "erase (paints white); it has its own width");
  const width = document.createElement("input");
  Object.assign(width, { type: "range", min: 1, max: 48, step: 1, title: "width of the pen or the eraser (px)" });
  width.className = "doodle-width";
  const widthLabel = document.createElement("span");
  widthLabel.className = "doodle-width-label";
  const undo = BUTTON("↶ Undo", "remove the last stroke (Ctrl+Z)");
  const redo = BUTTON("↷ Redo", "bring the stroke back (Ctrl+Shift+Z)");
  const clear = BUTTON("✕ Clear", "start again: the drawing and the result");
  const open = BUTTON("⤒ Open", "open an image as the drawing (or drop one on the canvas)");
  const file = document.createElement("input");
  Object.assign(file, { type: "file", accept: "image/*", hidden: true });
  file.className = "doodle-file";
  const saveDrawing = BUTTON("⤓ Drawing", "download the drawing as a PNG");
  const saveResult = BUTTON("⤓ Result", "download the generated image as a PNG");
  const liveBox = document.createElement("label");
  liveBox.className = "doodle-live";
  const live = document.createElement("input");
  live.type = "checkbox";
  liveBox.append(live, document.createTextNode(" live"));
  liveBox.title = "regenerate after every stroke";
  const picker = document.createElement("select");
  picker.className = "doodle-model";
  picker.title = "the generator that colours the drawing";
  const generate = BUTTON("▶ Generate", "colour the drawing with the generator");
  generate.classList.add("doodle-generate");
  bar.append(pen, eraser, width, widthLabel, undo, redo, clear, open, file, saveDrawing, saveResult,
             liveBox, picker, generate);

  // ---- drawing and result, side by side when they fit, one above the other when not
  const panels = document.createElement("div");
  panels.className = "doodle-panels";
  const canvas = document.createElement("canvas");
  canvas.className = "doodle-drawing";
  // The screen canvas has devicePixelRatio pixels per model pixel, so strokes stay crisp on a
  // HiDPI screen; what Python gets is painted again at the model's size (exportCanvas).
  // At most 4096 px a side: a 2048 canvas at ratio 3 would exceed what browsers (iOS Safari) allocate.
  const dpr = Math.max(1, Math.min(window.devicePixelRatio || 1, 4096 / size));
  canvas.width = canvas.height = Math.round(size * dpr);
  const exportCanvas = document.createElement("canvas");
  exportCanvas.width = exportCanvas.height = size;
  const resultBox = document.createElement("div");
  resultBox.className = "doodle-result-box";
  const result = document.createElement("img");
  result.className = "doodle-result";
  result.alt = "generated image";
  const placeholder = document.createElement("div");
  placeholder.className = "doodle-placeholder";
  placeholder.textContent = "the generated image appears here";
  resultBox.append(result, placeholder);
  panels.append(canvas, resultBox);

  const status = document.createElement("div");
  status.className = "doodle-status";
  status.setAttribute("role", "status");
  root.append(bar, panels, status);
  el.appendChild(root);

  const ctx = canvas.getContext("2d");
  const exportCtx = exportCanvas.getContext("2d");
  let background = null; // the decoded background_png
  let current = null;    // the stroke being drawn, local until the pen lifts
  let activePointer = null; // one pointer draws; a second finger or a resting palm is ignored

  function redraw() {
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    paintDrawing(ctx, size, background, model.get("strokes"));
    if (current) paintStroke(ctx, current);
  }

  let backgroundVersion = 0;
  let backgroundReady = Promise.resolve(); // a PNG for Python waits for it: strokes on a doodle need the doodle
  function showBackground() {
    // Decoded once into an ImageBitmap: it stays drawable for every repaint and every PNG sent.
    const bytes = viewToBytes(model.get("background_png"));
    const version = ++backgroundVersion;
    if (!bytes) { background = null; redraw(); backgroundReady = Promise.resolve(); return; }
    backgroundReady = createImageBitmap(new Blob([bytes], { type: "image/png" })).then((bitmap) => {
      if (version !== backgroundVersion) { bitmap.close(); return; } // a newer background arrived meanwhile
      if (background) background.close();
      background = bitmap;
      redraw();
    }, () => {
      background = null; // never paint new strokes over the old doodle
      redraw();
      say("the loaded image could not be decoded");
      model.save_changes();
    });
  }

  function say(text) { model.set("status", text); }

  let sending = Promise.resolve();
  const failed = (err) => { // one failure must not stop every later PNG: the chain goes on
    say(`the canvas could not send the drawing: ${err}`);
    model.save_changes();
  };
  function send() {
    // The model's state changed here (a stroke, undo, redo): send Python the PNG it now shows,
    // once the background is decoded (usually it is: then this runs in the same task).
    const strokes = model.get("strokes");
    const drawn = JSON.stringify(strokes); // by value: an echo from the kernel brings an equal, new array
    const encode = () => {
      paintDrawing(exportCtx, size, background, strokes);
      model.set("drawing_png", pngBytes(exportCanvas));
      const n = strokes.length;
      if (!model.get("live")) say(`${n} stroke${n === 1 ? "" : "s"}: press Generate`);
      model.save_changes();
    };
    sending = sending.then(() => backgroundReady).then(() => {
      // Another view, Clear or Python may have changed the drawing meanwhile: its own PNG follows.
      if (JSON.stringify(model.get("strokes")) === drawn) encode();
    }).catch(failed);
  }

  function position(event) {
    // Inside the border: clientLeft/clientWidth, not the bounding box (1 px off, more when scaled down).
    const r = canvas.getBoundingClientRect();
    const round = (v) => Math.round(v * 10) / 10;
    return [round((event.clientX - r.left - canvas.clientLeft) * size / canvas.clientWidth),
            round((event.clientY - r.top - canvas.clientTop) * size / canvas.clientHeight)];
  }

  let activeType = null;
  function onDown(event) {
    if (event.pointerType === "mouse" && event.button !== 0) return;
    // One pointer draws. A pen may take over from a touch (the palm that landed first); others are ignored.
    if (activePointer !== null && !(event.pointerType === "pen" && activeType === "touch")) return;
    if (activePointer !== null) { current = null; redraw(); } // the palm's stroke is dropped
    activePointer = event.pointerId;
    activeType = event.pointerType;
    try { canvas.setPointerCapture(event.pointerId); } catch (e) { /* a synthetic pointer */ }
    // A pen's eraser end (or its eraser button) erases, whatever the toolbar says.
    const tool = event.pointerType === "pen" && (event.buttons & 32) ? "eraser" : model.get("tool");
    current = { tool, width: model.get(tool === "eraser" ? "eraser_width" : "pen_width"),
                points: [position(event)] };
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    paintStroke(ctx, current);
    root.focus({ preventScroll: true });
    event.preventDefault();
  }
  function onMove(event) {
    if (!current || event.pointerId !== activePointer) return;
    // Coalesced events: every sample the pointer produced since the last frame, for smooth curves.
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    for (const e of events.length ? events : [event]) {
      const last = current.points[current.points.length - 1];
      const next = position(e);
      current.points.push(next);
      paintStroke(ctx, { ...current, points: [last, next] });
    }
  }
  function onUp(event) {
    if (event.pointerId !== activePointer) return;
    activePointer = null;
    if (!current) return;
    const stroke = current;
    current = null;
    model.set("strokes", [...model.get("strokes"), stroke]); // a new array: the model sees a change
    model.set("undone", []);
    send();
  }
  canvas.addEventListener("pointerdown", onDown);
  canvas.addEventListener("pointermove", onMove);
  canvas.addEventListener("pointerup", onUp);
  canvas.addEventListener("pointercancel", onUp);
  canvas.addEventListener("lostpointercapture", onUp);

  // ---- history: both stacks live in the model
  function undoStroke() {
    const strokes = model.get("strokes");
    if (!strokes.length) return;
    model.set("strokes", strokes.slice(0, -1));
    model.set("undone", [...model.get("undone"), strokes[strokes.length - 1]]);
    send();
  }
  function redoStroke() {
    const undone = model.get("undone");
    if (!undone.length) return;
    model.set("strokes", [...model.get("strokes"), undone[undone.length - 1]]);
    model.set("undone", undone.slice(0, -1));
    send();
  }
  undo.addEventListener("click", undoStroke);
  redo.addEventListener("click", redoStroke);
  // Ctrl+Z / Ctrl+Shift+Z / Ctrl+Y on the focused canvas, taken on the window in the capture phase:
  // before the notebook's own undo (Notebook 7 handles keys in the capture phase). Other keys
  // (Shift+Enter, Esc, ...) go on to the notebook as usual.
  function onKey(event) {
    const key = event.key.toLowerCase();
    if (!root.contains(event.target) || !(event.ctrlKey || event.metaKey) || (key !== "z" && key !== "y")) return;
    if (key === "y" || event.shiftKey) redoStroke(); else undoStroke();
    event.preventDefault();
    event.stopImmediatePropagation();
  }
  window.addEventListener("keydown", onKey, true);

  function replaceDrawing(backgroundBytes, message) {
    // Clear, Open and drop: a new drawing, no history, no result that belonged to the old one.
    // After any PNG still on its way (send), so that an older drawing never arrives last.
    sending = sending.then(() => {
      model.set("strokes", []);
      model.set("undone", []);
      model.set("background_png", backgroundBytes);
      model.set("drawing_png", backgroundBytes);
      model.set("result_png", EMPTY());
      say(message);
      model.save_changes();
    }).catch(failed);
  }
  clear.addEventListener("click", () => replaceDrawing(EMPTY(), "cleared: draw something"));

  function openFile(f) {
    if (!f) return;
    if (!f.type.startsWith("image/")) { say(`${f.name}: not an image`); model.save_changes(); return; }
    const url = URL.createObjectURL(f);
    const image = new Image();
    image.onload = () => {
      // Fitted and centred on white at the model's size, as load_image does in Python.
      const scale = size / Math.max(image.naturalWidth, image.naturalHeight);
      const w = image.naturalWidth * scale, h = image.naturalHeight * scale;
      const fitted = document.createElement("canvas");
      fitted.width = fitted.height = size;
      const fittedCtx = fitted.getContext("2d");
      fittedCtx.fillStyle = "#ffffff";
      fittedCtx.fillRect(0, 0, size, size);
      fittedCtx.drawImage(image, (size - w) / 2, (size - h) / 2, w, h);
      URL.revokeObjectURL(url);
      replaceDrawing(pngBytes(fitted), `opened ${f.name}: draw on it or press Generate`);
    };
    image.onerror = () => { URL.revokeObjectURL(url); say(`${f.name}: the browser cannot read this image`); model.save_changes(); };
    image.src = url;
  }
  open.addEventListener("click", () => file.click());
  file.addEventListener("change", () => { openFile(file.files[0]); file.value = ""; });
  root.addEventListener("dragover", (event) => { event.preventDefault(); root.classList.add("doodle-drop"); });
  root.addEventListener("dragleave", () => root.classList.remove("doodle-drop"));
  root.addEventListener("drop", (event) => {
    event.preventDefault();
    root.classList.remove("doodle-drop");
    openFile(event.dataTransfer && event.dataTransfer.files[0]);
  });

  function download(url, name) {
    const a = document.createElement("a");
    a.href = url;
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
  }
  saveDrawing.addEventListener("click", () => {
    paintDrawing(exportCtx, size, background, model.get("strokes"));
    download(exportCanvas.toDataURL("image/png"), "doodle.png");
  });
  saveResult.addEventListener("click", () => { if (resultUrl) download(resultUrl, "result.png"); });

  // ---- controls -> model
  const setTrait = (name, value) => { model.set(name, value); model.save_changes(); };
  pen.addEventListener("click", () => setTrait("tool", "pen"));
  eraser.addEventListener("click", () => setTrait("tool", "eraser"));
  width.addEventListener("input", () =>
    setTrait(model.get("tool") === "eraser" ? "eraser_width" : "pen_width", Number(width.value)));
  live.addEventListener("change", () => setTrait("live", live.checked));
  picker.addEventListener("change", () => setTrait("model_name", picker.value));
  generate.addEventListener("click", () => {
    // Busy at once, before the kernel answers; Python turns it off when the result is in.
    model.set("busy", true);
    model.set("generate_requests", model.get("generate_requests") + 1);
    model.save_changes();
  });

  // ---- model -> view
  function showControls() {
    const tool = model.get("tool");
    pen.classList.toggle("doodle-active", tool === "pen");
    eraser.classList.toggle("doodle-active", tool === "eraser");
    const w = model.get(tool === "eraser" ? "eraser_width" : "pen_width");
    width.value = w;
    widthLabel.textContent = `${w} px`;
    live.checked = model.get("live");
    undo.disabled = !model.get("strokes").length;
    redo.disabled = !model.get("undone").length;
    saveResult.disabled = !resultUrl;
    root.classList.toggle("doodle-busy", model.get("busy"));
    generate.textContent = model.get("busy") ? "⏳ Generating" : "▶ Generate";
    generate.disabled = model.get("busy");
  }
  function showModels() {
    const names = model.get("model_names");
    picker.replaceChildren(...names.map((name) => new Option(name, name)));
    picker.value = model.get("model_name");
    picker.hidden = names.length < 2;
  }
  let resultUrl = null;
  function showResult() {
    if (resultUrl) URL.revokeObjectURL(resultUrl);
    resultUrl = bytesToUrl(model.get("result_png"));
    if (resultUrl) result.src = resultUrl;
    else result.removeAttribute("src");
    result.hidden = !resultUrl;
    placeholder.hidden = Boolean(resultUrl);
    showControls();
  }
  const showStatus = () => { status.textContent = model.get("status"); };

  const onStrokes = () => { redraw(); showControls(); };
  const handlers = [
    ...["tool", "pen_width", "eraser_width", "live", "busy", "undone"].map((n) => [n, showControls]),
    ["strokes", onStrokes], ["background_png", showBackground], ["result_png", showResult],
    ["status", showStatus], ["model_names", showModels], ["model_name", showModels],
  ].map(([name, handler]) => [`change:${name}`, handler]);
  for (const [event, handler] of handlers) model.on(event, handler);

  redraw();
  showBackground();
  showResult();
  showModels();
  showStatus();
  return () => {
    for (const [event, handler] of handlers) model.off(event, handler);
    window.removeEventListener("keydown", onKey, true);
    if (resultUrl) URL.revokeObjectURL(resultUrl);
  };
}

export default { render };
