/** The Annotator's view of one image: the image and its overlay laid out at a zoom, the
 * native-pixel crop shown past the sent copy's resolution, wheel zoom about the pointer,
 * and the minimap that says (and moves) where the view is. */
import { h, s } from "../dom.js";

/** The zoom bounds: from a quarter of "fit" to 8× "fit" or 8 screen px per image px,
 * whichever is more (a 12 MP photo can be looked at pixel by pixel); ×1.15 a wheel notch. */
export const ZOOM = { min: 0.25, max: 8, native: 8, step: 1.15 };

/** The largest zoom (a multiple of "fit") for an image shown at `base` screen px per
 * image px at fit. */
export const maxZoom = (base) => Math.max(ZOOM.max, ZOOM.native / base);
/** The tallest an image is shown at "fit", screen px: as tall as the window allows once
 * the widget's header and the notebook's bars have their room, within these bounds. */
export const FIT_HEIGHT = { min: 360, max: 1600, room: 180 };
export const fitHeight = (windowHeight) =>
  Math.min(FIT_HEIGHT.max, Math.max(FIT_HEIGHT.min, windowHeight - FIT_HEIGHT.room));

/** Screen px per image px at "fit": the whole `width` × `height` image in `viewWidth` px,
 * at most `maxHeight` px high; a small image (2× or more) grows by whole steps, up to 8, so
 * its pixels stay sharp and square. */
export function fitScale(viewWidth, width, height, maxHeight = 640) {
  const fit = Math.min(viewWidth / width, maxHeight / height);
  return fit >= 2 ? Math.min(Math.floor(fit), 8) : fit;
}

/** The image point under screen point (clientX, clientY) of an image shown in `rect`,
 * kept inside the `width` × `height` image. */
export function imagePoint(clientX, clientY, rect, width, height) {
  const x = ((clientX - rect.left) / rect.width) * width;
  const y = ((clientY - rect.top) / rect.height) * height;
  return [Math.min(Math.max(x, 0), width), Math.min(Math.max(y, 0), height)];
}

/**
 * The view's elements and what moves them. `sample()` is the image shown; `redraw(side)`
 * draws the overlay again (and the side panel when `side`, whose minimap line and zoom
 * text follow the view); `panning()` says whether a plain wheel zooms (the pan tool).
 * @param {{model: any, conn: {send: Function}, sample: () => import("./messages.js").Sample,
 *          redraw: (side: boolean) => void, panning: () => boolean}} o
 */
export function createView({ model, conn, sample, redraw, panning }) {
  const img = h("img", { alt: "" });
  const svg = s("svg", { "data-role": "overlay" });
  // native pixels: zoomed in past the sent copy, the region in view comes at full size,
  // above the copy and under the shapes
  const crop = h("img", { alt: "", "data-role": "crop", hidden: true });
  crop.style.cssText = "position:absolute; image-rendering:pixelated; pointer-events:none;";
  const stage = h("div", { class: "stage" }, img, crop, svg);
  const viewport = h("div", { class: "viewport" }, stage);
  const mapImg = h("img", { alt: "" });
  const mapView = h("div", { class: "view" });
  const minimap = h(
    "div",
    { class: "minimap", "data-role": "minimap", hidden: true },
    mapImg,
    mapView,
  );
  const area = h("div", { class: "view-area" }, viewport, minimap);
  const view = { area, img, svg, viewport, zoom: 1, url: null };
  let anchor = null,
    cropTimer = null,
    cropUrl = null;

  const baseScale = () => {
    const smp = sample();
    return fitScale(
      viewport.clientWidth || 840,
      smp.width,
      smp.height,
      fitHeight(window.innerHeight || 820),
    );
  };

  function layout() {
    const smp = sample();
    if (!smp.width) return;
    const base = baseScale();
    stage.style.width = `${smp.width * base * view.zoom}px`;
    stage.style.height = `${smp.height * base * view.zoom}px`;
    // the view keeps the size of the fitted image: zooming in scrolls inside it
    viewport.style.height = `${Math.ceil(smp.height * base) + 2}px`;
    viewport.style.maxHeight = viewport.style.height;
    // enlarged, the image shows its pixels (a small image or a zoom-in), not a blur
    img.style.imageRendering = base * view.zoom >= 2 ? "pixelated" : "auto";
    requestCrop();
    svg.setAttribute("viewBox", `0 0 ${smp.width} ${smp.height}`);
    svg.setAttribute("preserveAspectRatio", "none");
    renderMinimap();
  }

  function requestCrop() {
    clearTimeout(cropTimer);
    cropTimer = setTimeout(() => {
      const smp = sample();
      const shown = stage.getBoundingClientRect().width;
      const copy = img.naturalWidth || smp.width;
      if (!smp.width || shown <= copy * 1.05) {
        crop.hidden = true; // the copy suffices
        return;
      }
      const k = smp.width / shown; // image px per screen px
      conn.send({
        action: "crop",
        x0: viewport.scrollLeft * k,
        y0: viewport.scrollTop * k,
        x1: (viewport.scrollLeft + viewport.clientWidth) * k,
        y1: (viewport.scrollTop + viewport.clientHeight) * k,
      });
    }, 120);
  }
  model.on("msg:custom", (msg, buffers) => {
    if (!msg?.crop || msg.crop.sample_id !== sample().sample_id || !buffers?.length) return;
    const c = msg.crop,
      smp = sample();
    if (cropUrl) URL.revokeObjectURL(cropUrl);
    cropUrl = URL.createObjectURL(new Blob([buffers[0]], { type: "image/png" }));
    crop.src = cropUrl;
    for (const [k, v] of Object.entries(c)) if (k !== "sample_id") crop.dataset[k] = String(v);
    crop.style.left = `${(c.x0 / smp.width) * 100}%`;
    crop.style.top = `${(c.y0 / smp.height) * 100}%`;
    crop.style.width = `${((c.x1 - c.x0) / smp.width) * 100}%`;
    crop.style.height = `${((c.y1 - c.y0) / smp.height) * 100}%`;
    crop.hidden = false;
  });

  /** "fit": the whole image in view; "original": one image pixel per screen pixel. */
  function zoomTo(how) {
    if (!sample().width) return;
    view.zoom = how === "original" ? 1 / baseScale() : 1;
    layout();
    redraw(true);
  }

  /** Zoom so that the image point under (clientX, clientY) stays under it. */
  function zoomAt(zoom, clientX, clientY) {
    const r = stage.getBoundingClientRect(),
      v = viewport.getBoundingClientRect();
    // one wheel gesture keeps the point it started on (while the image is still smaller
    // than the view, no scroll can hold the point under the pointer; later steps can)
    const now = Date.now();
    if (!anchor || anchor.x !== clientX || anchor.y !== clientY || now - anchor.t > 1000) {
      anchor = {
        x: clientX,
        y: clientY,
        fx: (clientX - r.left) / r.width,
        fy: (clientY - r.top) / r.height,
      };
    }
    anchor.t = now;
    view.zoom = Math.min(maxZoom(baseScale()), Math.max(ZOOM.min, zoom));
    layout();
    const w = stage.getBoundingClientRect();
    viewport.scrollLeft = anchor.fx * w.width - (clientX - v.left);
    viewport.scrollTop = anchor.fy * w.height - (clientY - v.top);
    redraw(true); // the minimap follows the scroll
  }
  viewport.addEventListener(
    "wheel",
    (ev) => {
      if (!ev.ctrlKey && !ev.metaKey && !panning()) return;
      ev.preventDefault();
      const by = ev.deltaY < 0 ? ZOOM.step : 1 / ZOOM.step;
      zoomAt(view.zoom * by, ev.clientX, ev.clientY);
    },
    { passive: false },
  );

  // -- minimap: where the view is in the whole image, when zoomed in; click or drag to go --
  function renderMinimap() {
    const sw = stage.offsetWidth,
      sh = stage.offsetHeight;
    const zoomed = sw > viewport.clientWidth + 1 || sh > viewport.clientHeight + 1;
    minimap.hidden = !zoomed || !view.url;
    if (minimap.hidden) return;
    if (mapImg.src !== img.src) mapImg.src = img.src;
    const mw = 160,
      mh = (160 * sh) / sw;
    minimap.style.width = `${mw}px`;
    minimap.style.height = `${mh}px`;
    mapView.style.left = `${(viewport.scrollLeft / sw) * mw}px`;
    mapView.style.top = `${(viewport.scrollTop / sh) * mh}px`;
    mapView.style.width = `${Math.min(1, viewport.clientWidth / sw) * mw}px`;
    mapView.style.height = `${Math.min(1, viewport.clientHeight / sh) * mh}px`;
  }
  function goToMinimap(ev) {
    const r = minimap.getBoundingClientRect();
    viewport.scrollLeft =
      ((ev.clientX - r.left) / r.width) * stage.offsetWidth - viewport.clientWidth / 2;
    viewport.scrollTop =
      ((ev.clientY - r.top) / r.height) * stage.offsetHeight - viewport.clientHeight / 2;
  }
  minimap.addEventListener("pointerdown", (ev) => {
    ev.stopPropagation();
    goToMinimap(ev);
    minimap.setPointerCapture(ev.pointerId);
    const move = (e) => goToMinimap(e);
    minimap.addEventListener("pointermove", move);
    minimap.addEventListener("pointerup", () => minimap.removeEventListener("pointermove", move), {
      once: true,
    });
  });
  viewport.addEventListener("scroll", () => {
    requestCrop();
    renderMinimap();
  });

  /** Show new image bytes (a JPEG copy; none: an empty view). */
  function showImage(data) {
    crop.hidden = true;
    if (view.url) URL.revokeObjectURL(view.url);
    view.url = data?.byteLength
      ? URL.createObjectURL(new Blob([data], { type: "image/jpeg" }))
      : null;
    img.src = view.url ?? "";
    layout();
  }
  img.addEventListener("load", () => {
    layout();
    redraw(false);
  });
  // follow the panel's width (a resized window or sidebar): lay out again
  let lastWidth = 0;
  let lastHeight = window.innerHeight;
  const resized = new ResizeObserver(() => {
    if (Math.abs(viewport.clientWidth - lastWidth) < 2 && window.innerHeight === lastHeight) return;
    lastWidth = viewport.clientWidth;
    lastHeight = window.innerHeight;
    layout();
    redraw(false);
  });
  resized.observe(viewport);
  // a taller or shorter window changes the tallest fit, not the panel's width
  const onWindow = () => {
    if (window.innerHeight === lastHeight) return;
    lastHeight = window.innerHeight;
    layout();
    redraw(false);
  };
  window.addEventListener("resize", onWindow);

  return Object.assign(view, {
    layout,
    zoomTo,
    showImage,
    /** Screen px per image px now: 1 is the image's own pixels (shown as 100%). */
    native: () => baseScale() * view.zoom,
    /** The image point under a pointer event, inside the image. */
    toImage: (ev) => {
      const smp = sample();
      return imagePoint(ev.clientX, ev.clientY, svg.getBoundingClientRect(), smp.width, smp.height);
    },
    /** Image px per screen px (before the first layout, or in a hidden cell, the scale the
     * layout gives: never an infinite label size). */
    px: () => 1 / (svg.getBoundingClientRect().width / sample().width || baseScale() * view.zoom),
    dispose: () => {
      resized.disconnect();
      window.removeEventListener("resize", onWindow);
      clearTimeout(cropTimer);
      if (view.url) URL.revokeObjectURL(view.url);
      if (cropUrl) URL.revokeObjectURL(cropUrl);
    },
  });
}
