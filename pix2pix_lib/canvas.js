// The front end of DoodleCanvas (canvas.py): an anywidget ES module.
//
// The drawing is a list of strokes (each {tool, width, points}) with an undo history. Every view of
// one canvas in a page shares one copy of it (a "store"), filled from the model's `strokes` and
// `undone` when the first view starts; after that a change travels as one small `edit` ({id, op:
// add|undo|redo|replace, ...}), so a stroke costs the same at stroke 60 as at stroke 1. Strokes are
// painted here, so the pen stays smooth while the kernel is busy; Python hears of the drawing once
// per stroke, as the edit and a PNG in `drawing_png` at the model's pixel size. Synced traits are the
// only channel between the two sides (no custom messages).
//
// `render` is wiring over builders, each returning its cleanup: toolbar, drawing surface, PNG
// sender, pointer, history, files, view sync; and two that outlive a kernel: the kernel watch (say
// so when the kernel restarts or dies) and the take-over (a re-run's canvas keeps the drawing).

const BUTTON = (label, title) => {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.title = title;
  b.className = "doodle-button";
  return b;
};

const element = (tag, className, props = {}) => Object.assign(document.createElement(tag), { className }, props);

function viewToBytes(value) {
  // Python `bytes` arrive as a DataView (or an ArrayBuffer); an empty value means "no image".
  if (!value || value.byteLength === 0) return null;
  return value.buffer ? value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength) : value;
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

// ---- the drawing every view of one canvas shares, and the edits that change it
const stores = new Map(); // the model's `key` -> { strokes, undone, version, applied, gone }

function storeFor(model) {
  const key = model.get("key");
  if (!stores.has(key)) {
    const last = model.get("edit");
    stores.set(key, { strokes: model.get("strokes") || [], undone: model.get("undone") || [], version: 0,
                      applied: new Set(last && last.id ? [last.id] : []), gone: false });
  }
  return stores.get(key);
}

function applyEdit(store, edit) {
  // New arrays each time (never changed in place): a PNG on its way can tell the drawing moved on.
  if (!edit || !edit.id || store.applied.has(edit.id)) return false;
  store.applied.add(edit.id);
  const { strokes, undone } = store;
  if (edit.op === "add") Object.assign(store, { strokes: [...strokes, edit.stroke], undone: [] });
  else if (edit.op === "undo" && strokes.length) {
    Object.assign(store, { strokes: strokes.slice(0, -1), undone: [...undone, strokes[strokes.length - 1]] });
  } else if (edit.op === "redo" && undone.length) {
    Object.assign(store, { strokes: [...strokes, undone[undone.length - 1]], undone: undone.slice(0, -1) });
  } else if (edit.op === "replace") Object.assign(store, { strokes: edit.strokes || [], undone: edit.undone || [] });
  store.version++;
  return true;
}

let editCount = 0;
const newEdit = (store, op, fields = {}) => {
  const edit = { id: `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}-${++editCount}`, op, ...fields };
  applyEdit(store, edit);
  return { ...edit, count: store.strokes.length }; // Python checks the count: two pages at once resync
};

// ---- builders
function buildToolbar() {
  const bar = element("div", "doodle-toolbar", { role: "toolbar" });
  const t = {
    pen: BUTTON("✏ Pen", "draw black strokes"),
    eraser: BUTTON("◻ Eraser", "erase (paints white); it has its own width"),
    width: element("input", "doodle-width", { type: "range", min: 1, max: 48, step: 1,
                                              title: "width of the pen or the eraser (px)" }),
    widthLabel: element("span", "doodle-width-label"),
    undo: BUTTON("↶ Undo", "remove the last stroke (Ctrl+Z)"),
    redo: BUTTON("↷ Redo", "bring the stroke back (Ctrl+Shift+Z)"),
    clear: BUTTON("✕ Clear", "start again: the drawing and the result"),
    open: BUTTON("⤒ Open", "open an image as the drawing (or drop one on the canvas)"),
    file: element("input", "doodle-file", { type: "file", accept: "image/*", hidden: true }),
    saveDrawing: BUTTON("⤓ Drawing", "download the drawing as a PNG"),
    saveResult: BUTTON("⤓ Result", "download the generated image as a PNG"),
    liveBox: element("label", "doodle-live", { title: "regenerate after every stroke" }),
    live: element("input", "", { type: "checkbox" }),
    picker: element("select", "doodle-model", { title: "the generator that colours the drawing" }),
    generate: BUTTON("▶ Generate", "colour the drawing with the generator"),
  };
  t.width.setAttribute("aria-label", "pen width");
  t.picker.setAttribute("aria-label", "model");
  t.liveBox.append(t.live, document.createTextNode(" live"));
  t.generate.classList.add("doodle-generate");
  bar.append(t.pen, t.eraser, t.width, t.widthLabel, t.undo, t.redo, t.clear, t.open, t.file, t.saveDrawing,
             t.saveResult, t.liveBox, t.picker, t.generate);
  return { bar, ...t };
}

function buildSurface({ model, size, say }) {
  // Drawing and result, side by side when they fit, one above the other when not.
  const panels = element("div", "doodle-panels");
  const canvas = element("canvas", "doodle-drawing", { tabIndex: -1 });
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", "drawing area: draw with the mouse, a pen or a finger; "
                                    + "Ctrl+Z undoes, Ctrl+Shift+Z redoes");
  // The screen canvas has devicePixelRatio pixels per model pixel, so strokes stay crisp on a
  // HiDPI screen; what Python gets is painted again at the model's size (exportCanvas).
  // At most 4096 px a side: a 2048 canvas at ratio 3 would exceed what browsers (iOS Safari) allocate.
  const dpr = Math.max(1, Math.min(window.devicePixelRatio || 1, 4096 / size));
  canvas.width = canvas.height = Math.round(size * dpr);
  const exportCanvas = element("canvas", "");
  exportCanvas.width = exportCanvas.height = size;
  const resultBox = element("div", "doodle-result-box");
  const result = element("img", "doodle-result", { alt: "generated image" });
  const placeholder = element("div", "doodle-placeholder", { textContent: "the generated image appears here" });
  resultBox.append(result, placeholder);
  panels.append(canvas, resultBox);

  const surface = { panels, canvas, result, placeholder, dpr, size, ctx: canvas.getContext("2d"),
                    exportCanvas, exportCtx: exportCanvas.getContext("2d"), background: null, current: null,
                    backgroundReady: Promise.resolve(), decoding: false, resultUrl: null };
  surface.redraw = (strokes) => {
    surface.ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    paintDrawing(surface.ctx, size, surface.background, strokes);
    if (surface.current) paintStroke(surface.ctx, surface.current);
  };
  let version = 0;
  surface.showBackground = (strokes) => {
    // Decoded once into an ImageBitmap: it stays drawable for every repaint and every PNG sent.
    const bytes = viewToBytes(model.get("background_png"));
    const mine = ++version;
    if (!bytes) {
      if (surface.background) surface.background.close();
      Object.assign(surface, { background: null, decoding: false, backgroundReady: Promise.resolve() });
      surface.redraw(strokes());
      return;
    }
    surface.decoding = true;
    surface.backgroundReady = createImageBitmap(new Blob([bytes], { type: "image/png" })).then((bitmap) => {
      if (mine !== version) { bitmap.close(); return; } // a newer background arrived meanwhile
      if (surface.background) surface.background.close();
      Object.assign(surface, { background: bitmap, decoding: false });
      surface.redraw(strokes());
    }, () => {
      Object.assign(surface, { background: null, decoding: false }); // never paint new strokes over the old doodle
      surface.redraw(strokes());
      say("the loaded image could not be decoded", true);
    });
  };
  surface.showResult = () => {
    if (surface.resultUrl) URL.revokeObjectURL(surface.resultUrl);
    const bytes = viewToBytes(model.get("result_png"));
    surface.resultUrl = bytes ? URL.createObjectURL(new Blob([bytes], { type: "image/png" })) : null;
    if (surface.resultUrl) result.src = surface.resultUrl;
    else result.removeAttribute("src");
    result.hidden = !surface.resultUrl;
    placeholder.hidden = Boolean(surface.resultUrl);
  };
  return [surface, () => {
    if (surface.resultUrl) URL.revokeObjectURL(surface.resultUrl);
    if (surface.background) surface.background.close();
  }];
}

function buildSender({ model, store, surface, say }) {
  // commit(edit): the edit and the PNG of the drawing it leaves, to Python in one message when the
  // background is decoded (usually), else the edit now and the PNG once the doodle is there.
  let sending = Promise.resolve();
  const failed = (err) => say(`the canvas could not send the drawing: ${err}`, true); // the chain goes on
  const save = () => { try { model.save_changes(); } catch (err) { /* no kernel: the kernel watch says so */ } };
  const encode = (message) => {
    paintDrawing(surface.exportCtx, surface.size, surface.background, store.strokes);
    model.set("drawing_png", pngBytes(surface.exportCanvas));
    const n = store.strokes.length;
    if (message) say(message);
    else if (!model.get("live")) say(n ? `${n} stroke${n === 1 ? "" : "s"}: press Generate` : "draw something");
  };
  const sender = {
    commit(edit, message = "") {
      model.set("edit", edit);
      if (!surface.decoding) {
        try { encode(message); } catch (err) { failed(err); }
        save();
        return;
      }
      save();
      const version = store.version;
      sending = sending.then(() => surface.backgroundReady).then(() => {
        if (store.version === version) { encode(message); save(); } // else a later PNG follows
      }).catch(failed);
    },
    replaceDrawing(backgroundBytes, message) {
      // Clear, Open and drop: a new drawing, no history, no result that belonged to the old one.
      // After any PNG still on its way, so that an older drawing never arrives last.
      sending = sending.then(() => {
        model.set("edit", newEdit(store, "replace", { strokes: [], undone: [] }));
        model.set("background_png", backgroundBytes);
        model.set("drawing_png", backgroundBytes);
        model.set("result_png", EMPTY());
        say(message);
        save();
      }).catch(failed);
    },
  };
  return [sender, () => {}];
}

const SLOP = 8; // css px a finger may wander and still count as resting

function buildPointer({ model, store, surface, root, commitStroke }) {
  // One pointer draws. A pen takes over from touches (the palm that landed first). With two
  // fingers down, the one that moves draws and a resting one is ignored; two moving fingers are
  // a pinch or a scroll, not a stroke.
  const { canvas, ctx, dpr, size } = surface;
  let active = null, activeType = null, pinch = false;
  const touches = new Map(); // pointerId -> { x, y, points, moved }
  const position = (event) => {
    // Inside the border: clientLeft/clientWidth, not the bounding box (1 px off, more when scaled down).
    const r = canvas.getBoundingClientRect();
    const round = (v) => Math.round(v * 10) / 10;
    return [round((event.clientX - r.left - canvas.clientLeft) * size / canvas.clientWidth),
            round((event.clientY - r.top - canvas.clientTop) * size / canvas.clientHeight)];
  };
  const drop = () => { active = null; surface.current = null; surface.redraw(store.strokes); };
  const start = (event, points) => {
    active = event.pointerId;
    activeType = event.pointerType;
    // A pen's eraser end (or its eraser button) erases, whatever the toolbar says.
    const tool = event.pointerType === "pen" && (event.buttons & 32) ? "eraser" : model.get("tool");
    surface.current = { tool, width: model.get(tool === "eraser" ? "eraser_width" : "pen_width"), points };
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    paintStroke(ctx, surface.current);
  };
  function onDown(event) {
    if (event.pointerType === "mouse" && event.button !== 0) return;
    try { canvas.setPointerCapture(event.pointerId); } catch (e) { /* a synthetic pointer */ }
    root.focus({ preventScroll: true }); // Ctrl+Z works once the pen touched the canvas
    event.preventDefault();
    if (event.pointerType === "touch") {
      touches.set(event.pointerId, { x: event.clientX, y: event.clientY, points: [position(event)], moved: false });
      if (pinch || activeType === "pen" && active !== null) return;
      if (touches.size === 1) { start(event, touches.get(event.pointerId).points); return; }
      const drawing = active !== null && touches.get(active);
      if (drawing && !drawing.moved) drop(); // it was resting: whichever finger moves first draws
      return;
    }
    if (active !== null && !(event.pointerType === "pen" && activeType === "touch")) return;
    if (active !== null) drop(); // the palm's stroke is dropped
    start(event, [position(event)]);
  }
  function onMove(event) {
    // Coalesced events: every sample the pointer produced since the last frame, for smooth curves.
    const coalesced = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    const samples = (coalesced.length ? coalesced : [event]).map(position);
    const touch = touches.get(event.pointerId);
    if (touch) { // its points are the stroke's points once it draws
      touch.points.push(...samples);
      touch.moved ||= Math.hypot(event.clientX - touch.x, event.clientY - touch.y) > SLOP;
      if (pinch || !touch.moved) return;
      const othersMoved = [...touches].some(([id, t]) => id !== event.pointerId && t.moved);
      if (othersMoved || active !== null && active !== event.pointerId && activeType === "touch") {
        pinch = true; // two fingers moving
        drop();
        return;
      }
      if (active === null && activeType !== "pen") { start(event, touch.points); return; }
    } else if (surface.current && event.pointerId === active) {
      surface.current.points.push(...samples);
    }
    if (!surface.current || event.pointerId !== active) return;
    const points = surface.current.points;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    paintStroke(ctx, { ...surface.current, points: points.slice(Math.max(0, points.length - samples.length - 1)) });
  }
  function onUp(event) {
    touches.delete(event.pointerId);
    if (!touches.size) pinch = false;
    if (event.pointerId !== active) return;
    const stroke = surface.current;
    active = null;
    activeType = null;
    surface.current = null;
    if (stroke) commitStroke(stroke);
  }
  const events = { pointerdown: onDown, pointermove: onMove, pointerup: onUp, pointercancel: onUp,
                   lostpointercapture: onUp };
  for (const [name, handler] of Object.entries(events)) canvas.addEventListener(name, handler);
  return () => { for (const [name, handler] of Object.entries(events)) canvas.removeEventListener(name, handler); };
}

const NAV_KEYS = new Set(["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "Home", "End", "PageUp", "PageDown"]);

function buildHistory({ store, toolbar, root, sender }) {
  const undo = () => { if (store.strokes.length) sender.commit(newEdit(store, "undo")); };
  const redo = () => { if (store.undone.length) sender.commit(newEdit(store, "redo")); };
  toolbar.undo.addEventListener("click", undo);
  toolbar.redo.addEventListener("click", redo);
  // Taken on the window in the capture phase, before the notebook's shortcuts (Notebook 7 handles
  // keys in the capture phase): Ctrl+Z / Ctrl+Shift+Z / Ctrl+Y anywhere in the canvas, and the keys
  // that move the width slider and the model picker (else they move the notebook's cell selection).
  // Other keys (Shift+Enter, Esc, ...) go on to the notebook as usual.
  function onKey(event) {
    if (!root.contains(event.target)) return;
    const key = event.key.toLowerCase();
    if ((event.ctrlKey || event.metaKey) && (key === "z" || key === "y")) {
      if (key === "y" || event.shiftKey) redo(); else undo();
      event.preventDefault();
      event.stopImmediatePropagation();
    } else if ((event.target === toolbar.width || event.target === toolbar.picker) && NAV_KEYS.has(event.key)) {
      event.stopImmediatePropagation(); // the browser's own action (moving the slider) still happens
    }
  }
  window.addEventListener("keydown", onKey, true);
  return () => window.removeEventListener("keydown", onKey, true);
}

function buildFiles({ model, root, store, surface, toolbar, sender, say }) {
  const { size } = surface;
  function openFile(f) {
    if (!f) return;
    if (!f.type.startsWith("image/")) { say(`${f.name}: not an image`, true); return; }
    const url = URL.createObjectURL(f);
    const image = new Image();
    image.onload = () => {
      // Fitted and centred on white at the model's size, as load_image does in Python.
      const scale = size / Math.max(image.naturalWidth, image.naturalHeight);
      const w = image.naturalWidth * scale, h = image.naturalHeight * scale;
      const fitted = element("canvas", "");
      fitted.width = fitted.height = size;
      const fittedCtx = fitted.getContext("2d");
      fittedCtx.fillStyle = "#ffffff";
      fittedCtx.fillRect(0, 0, size, size);
      fittedCtx.drawImage(image, (size - w) / 2, (size - h) / 2, w, h);
      URL.revokeObjectURL(url);
      sender.replaceDrawing(pngBytes(fitted), `opened ${f.name}: draw on it or press Generate`);
    };
    image.onerror = () => { URL.revokeObjectURL(url); say(`${f.name}: the browser cannot read this image`, true); };
    image.src = url;
  }
  const download = (url, name) => {
    const a = element("a", "", { href: url, download: name });
    document.body.appendChild(a);
    a.click();
    a.remove();
  };
  toolbar.clear.addEventListener("click", () => sender.replaceDrawing(EMPTY(), "cleared: draw something"));
  toolbar.open.addEventListener("click", () => toolbar.file.click());
  toolbar.file.addEventListener("change", () => { openFile(toolbar.file.files[0]); toolbar.file.value = ""; });
  root.addEventListener("dragover", (event) => { event.preventDefault(); root.classList.add("doodle-drop"); });
  root.addEventListener("dragleave", () => root.classList.remove("doodle-drop"));
  root.addEventListener("drop", (event) => {
    event.preventDefault();
    root.classList.remove("doodle-drop");
    openFile(event.dataTransfer && event.dataTransfer.files[0]);
  });
  toolbar.saveDrawing.addEventListener("click", () => {
    paintDrawing(surface.exportCtx, size, surface.background, store.strokes);
    download(surface.exportCanvas.toDataURL("image/png"), "doodle.png");
  });
  toolbar.saveResult.addEventListener("click", () => { if (surface.resultUrl) download(surface.resultUrl, "result.png"); });
  return () => {}; // every listener is on this view's own elements
}

function buildViewSync({ model, store, root, toolbar: t, surface, status }) {
  // Controls -> model, and model -> view. A button that greys itself out while focused hands the
  // focus to the canvas, so the next Ctrl+Z still reaches it.
  const setTrait = (name, value) => { model.set(name, value); model.save_changes(); };
  t.pen.addEventListener("click", () => setTrait("tool", "pen"));
  t.eraser.addEventListener("click", () => setTrait("tool", "eraser"));
  t.width.addEventListener("input", () =>
    setTrait(model.get("tool") === "eraser" ? "eraser_width" : "pen_width", Number(t.width.value)));
  t.live.addEventListener("change", () => setTrait("live", t.live.checked));
  t.picker.addEventListener("change", () => setTrait("model_name", t.picker.value));
  t.generate.addEventListener("click", () => {
    // Busy at once, before the kernel answers; Python turns it off when the result is in.
    model.set("busy", true);
    setTrait("generate_requests", model.get("generate_requests") + 1);
  });
  const disable = (button, off) => {
    if (off && document.activeElement === button) root.focus({ preventScroll: true });
    button.disabled = off;
  };
  function showControls() {
    const tool = model.get("tool");
    for (const [button, name] of [[t.pen, "pen"], [t.eraser, "eraser"]]) {
      button.classList.toggle("doodle-active", tool === name);
      button.setAttribute("aria-pressed", String(tool === name));
    }
    const w = model.get(tool === "eraser" ? "eraser_width" : "pen_width");
    t.width.value = w;
    t.width.setAttribute("aria-label", `${tool} width`);
    t.widthLabel.textContent = `${w} px`;
    t.live.checked = model.get("live");
    disable(t.undo, !store.strokes.length);
    disable(t.redo, !store.undone.length);
    disable(t.saveResult, !surface.resultUrl);
    const busy = model.get("busy") && !store.gone;
    root.classList.toggle("doodle-busy", busy);
    t.generate.replaceChildren(...(busy ? [element("span", "doodle-spinner"), " Generating"] : ["▶ Generate"]));
    disable(t.generate, busy || store.gone);
  }
  function showModels() {
    const names = model.get("model_names");
    t.picker.replaceChildren(...names.map((name) => new Option(name, name)));
    t.picker.value = model.get("model_name");
    t.picker.hidden = names.length < 2;
  }
  const showStatus = () => { status.textContent = store.gone || model.get("status"); };
  let shown = -1; // the store's version this view shows: an echo of its own stroke repaints nothing
  const onEdit = () => {
    applyEdit(store, model.get("edit"));
    if (shown !== store.version) surface.redraw(store.strokes);
    shown = store.version;
    showControls();
  };
  const handlers = [
    ...["tool", "pen_width", "eraser_width", "live", "busy"].map((n) => [n, showControls]),
    ["edit", onEdit], ["background_png", () => surface.showBackground(() => store.strokes)],
    ["result_png", () => { surface.showResult(); showControls(); }],
    ["status", showStatus], ["model_names", showModels], ["model_name", showModels],
  ].map(([name, handler]) => [`change:${name}`, handler]);
  for (const [event, handler] of handlers) model.on(event, handler);
  const view = { showControls, showStatus };
  surface.redraw(store.strokes);
  surface.showBackground(() => store.strokes);
  surface.showResult();
  showModels();
  showStatus();
  showControls();
  return [view, () => { for (const [event, handler] of handlers) model.off(event, handler); }];
}

const GONE = "The kernel restarted or stopped, so this canvas no longer reaches Python. "
             + "Run its cell again: the new canvas keeps this drawing.";

function watchKernel({ model, el, store, onGone }) {
  // ipywidgets marks a view whose kernel went (a restart); JupyterLab and Notebook 7 also say
  // when the kernel dies or restarts by itself after a crash, the classic notebook says so on its events.
  const gone = () => { if (!store.gone) { store.gone = GONE; } onGone(); };
  const observer = new MutationObserver(() => { if (el.classList.contains("jupyter-widgets-disconnected")) gone(); });
  observer.observe(el, { attributes: true, attributeFilter: ["class"] });
  const cleanups = [() => observer.disconnect()];
  const manager = model.widget_manager || {};
  const kernel = manager.kernel;
  if (kernel && kernel.statusChanged && kernel.statusChanged.connect) {
    const onStatus = (_, s) => { if (s === "restarting" || s === "autorestarting" || s === "dead") gone(); };
    kernel.statusChanged.connect(onStatus);
    cleanups.push(() => kernel.statusChanged.disconnect(onStatus));
  }
  const events = manager.notebook && manager.notebook.events;
  if (events && events.on) {
    const names = "kernel_restarting.Kernel kernel_autorestarting.Kernel kernel_dead.Kernel kernel_killed.Session";
    events.on(names, gone);
    cleanups.push(() => events.off(names, gone));
  }
  if (store.gone) onGone();
  return () => cleanups.forEach((f) => f());
}

function takeOver({ model, el, store, root, sender }) {
  // A re-run's canvas takes the place of the cell's old one. In JupyterLab and Notebook 7 Python
  // already handed the drawing over (it knows the cell); in the classic notebook, and after a
  // kernel restart, only the page knows: the old canvas's drawing comes from its store here, and
  // the old canvas, if its kernel still runs, is told to close.
  let tries = 0, timer = null;
  const look = () => {
    const cell = el.isConnected && el.closest(".cell, .jp-Cell");
    if (!cell) { if (++tries < 100) timer = setTimeout(look, 50); return; }
    const before = cell.__doodleCanvas;
    cell.__doodleCanvas = { model, store, root };
    if (!before || before.store === store || before.root.isConnected) return; // the same canvas, or one of this run
    if (!before.store.gone) {
      try { before.model.set("retired", true); before.model.save_changes(); } catch (e) { /* closed already */ }
    }
    const old = before.store, background = before.model.get("background_png");
    const fresh = !store.strokes.length && !store.undone.length && !viewToBytes(model.get("background_png"));
    if (!fresh || !(old.strokes.length || old.undone.length || viewToBytes(background))) return;
    if (before.model.get("size") !== model.get("size")) return; // strokes are in the old canvas's pixels
    model.set("background_png", background || EMPTY());
    if (model.get("model_names").includes(before.model.get("model_name"))) model.set("model_name", before.model.get("model_name"));
    sender.commit(newEdit(store, "replace", { strokes: old.strokes, undone: old.undone }),
                  "kept the drawing from this cell's last run: press Generate");
  };
  look();
  return () => clearTimeout(timer);
}

function render({ model, el }) {
  const size = model.get("size");
  const store = storeFor(model);
  const root = element("div", "doodle-canvas", { tabIndex: 0 }); // focusable: Ctrl+Z / Ctrl+Y work here
  root.setAttribute("role", "group");
  root.setAttribute("aria-label", "doodle canvas");
  root.style.setProperty("--doodle-size", `${size}px`);
  const status = element("div", "doodle-status", { role: "status" });
  const say = (text, now = false) => { model.set("status", text); if (now) model.save_changes(); };

  const toolbar = buildToolbar();
  const [surface, surfaceDone] = buildSurface({ model, size, say });
  root.append(toolbar.bar, surface.panels, status);
  el.appendChild(root);
  const [sender, senderDone] = buildSender({ model, store, surface, say });
  const commitStroke = (stroke) => sender.commit(newEdit(store, "add", { stroke }));
  const [view, viewDone] = buildViewSync({ model, store, root, toolbar, surface, status });
  const onGone = () => { view.showStatus(); view.showControls(); root.classList.add("doodle-gone"); };
  const cleanups = [
    surfaceDone, senderDone, viewDone,
    buildPointer({ model, store, surface, root, commitStroke }),
    buildHistory({ store, toolbar, root, sender }),
    buildFiles({ model, root, store, surface, toolbar, sender, say }),
    watchKernel({ model, el, store, onGone }),
    takeOver({ model, el, store, root, sender }),
  ];
  return () => cleanups.forEach((cleanup) => cleanup());
}

export default { render };
