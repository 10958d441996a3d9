// The mask brush: a canvas over the first input image, at that image's own pixel size. Brush and
// eraser, a size, clear; mouse, pen and touch through pointer events. The painting becomes the
// mask in OpenAI's convention: a PNG of the image's size, fully transparent where painted (edit
// here) and opaque black elsewhere (keep).

const PAINT = "rgb(236, 72, 153)"; // shown at half opacity over the image (app.css)

export class MaskPainter {
  constructor({ canvas, base, onChange }) {
    this.canvas = canvas;
    this.base = base;
    this.ctx = canvas.getContext("2d", { willReadFrequently: true });
    this.onChange = onChange;
    this.tool = "brush";
    this.size = 40; // in screen pixels: what the user sees, whatever the image's size
    this.version = 0; // bumped by every stroke and clear (the page re-uploads a changed mask)
    this.painted = false;
    this.src = null;
    this.stroke = null;
    canvas.addEventListener("pointerdown", (e) => this.down(e));
    canvas.addEventListener("pointermove", (e) => this.move(e));
    for (const ev of ["pointerup", "pointercancel", "lostpointercapture"]) canvas.addEventListener(ev, () => this.up());
  }

  /** Paint over this image (its URL and pixel size); a new image starts a new, empty mask. */
  setImage(src, width, height) {
    if (src === this.src && width === this.canvas.width && height === this.canvas.height) return;
    this.src = src;
    this.base.src = src;
    this.canvas.width = Math.max(1, width);
    this.canvas.height = Math.max(1, height);
    this.canvas.parentElement.style.setProperty("--arn", String(this.canvas.width / this.canvas.height));
    this.painted = false;
    this.version += 1;
  }

  get width() { return this.canvas.width; }
  get height() { return this.canvas.height; }

  clear() {
    this.ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    this.painted = false;
    this.version += 1;
    this.changed();
  }

  point(e) {
    const r = this.canvas.getBoundingClientRect();
    const sx = this.canvas.width / r.width;
    return { x: (e.clientX - r.left) * sx, y: (e.clientY - r.top) * (this.canvas.height / r.height), scale: sx };
  }

  down(e) {
    if (e.pointerType === "mouse" && e.button !== 0) return;
    e.preventDefault();
    try { this.canvas.setPointerCapture(e.pointerId); } catch { /* a pointer that is already gone */ }
    const p = this.point(e);
    this.stroke = { last: p, id: e.pointerId };
    const ctx = this.ctx;
    ctx.globalCompositeOperation = this.tool === "eraser" ? "destination-out" : "source-over";
    ctx.fillStyle = PAINT;
    ctx.strokeStyle = PAINT;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.lineWidth = this.size * p.scale;
    ctx.beginPath();
    ctx.arc(p.x, p.y, ctx.lineWidth / 2, 0, Math.PI * 2);
    ctx.fill();
  }

  move(e) {
    if (!this.stroke || e.pointerId !== this.stroke.id) return;
    e.preventDefault();
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
    const ctx = this.ctx;
    ctx.beginPath();
    ctx.moveTo(this.stroke.last.x, this.stroke.last.y);
    for (const ev of events.length ? events : [e]) {
      const p = this.point(ev);
      ctx.lineTo(p.x, p.y);
      this.stroke.last = p;
    }
    ctx.stroke();
  }

  up() {
    if (!this.stroke) return;
    this.stroke = null;
    this.ctx.globalCompositeOperation = "source-over";
    this.painted = this.tool === "brush" ? true : this.hasPaint();
    this.version += 1;
    this.changed();
  }

  /** Whether any pixel is painted (half covered or more: what the mask will make transparent). */
  hasPaint() {
    const { data } = this.ctx.getImageData(0, 0, this.canvas.width, this.canvas.height);
    for (let i = 3; i < data.length; i += 4) if (data[i] >= 128) return true;
    return false;
  }

  /** The mask PNG: the image's size, alpha 0 where painted, opaque black elsewhere. */
  toBlob() {
    const { width, height } = this.canvas;
    const src = this.ctx.getImageData(0, 0, width, height).data;
    const out = new ImageData(width, height);
    const px = out.data;
    for (let i = 3; i < px.length; i += 4) px[i] = src[i] >= 128 ? 0 : 255; // rgb stays 0: black
    const mask = document.createElement("canvas");
    mask.width = width;
    mask.height = height;
    mask.getContext("2d").putImageData(out, 0, 0);
    return new Promise((resolve, reject) => mask.toBlob((b) => (b ? resolve(b) : reject(new Error("the mask could not be encoded"))), "image/png"));
  }

  changed() {
    if (this.onChange) this.onChange();
  }
}
