/**
 * The 3D plant floor (plain three.js): one instanced mesh per shape and material role, status rings and
 * beacons coloured per asset, anomaly halos that pulse, DOM labels anchored at the beacons, hover and click
 * through a raycaster. Renders on demand (camera moves, data) and continuously only while something pulses.
 */
import * as THREE from 'three';
import { OrbitControls } from 'three/examples/jsm/controls/OrbitControls.js';
import { GLTFLoader } from 'three/examples/jsm/loaders/GLTFLoader.js';
import type { AssetView } from '../model/assets';
import { SHAPES, type Shape } from '../types';
import { type PartRole, type ShapeSpec, beaconOf, buildShape, ringOf } from './shapes';

export interface FloorStyle {
  background: string;
  floor: string;
  grid: string;
  body: string;
  dark: string;
  glass: string;
  labelBg: string;
  labelText: string;
  labelBorder: string;
  fontFamily: string;
  /** Resolves Grafana colour names ("green", "semi-dark-red") to CSS colours. */
  color: (name: string) => string;
}

export interface FloorCallbacks {
  onHover: (asset: AssetView | null, clientX: number, clientY: number) => void;
  onClick: (asset: AssetView) => void;
  onProblem: (text: string) => void;
}

interface Pickable {
  mesh: THREE.InstancedMesh | THREE.Object3D;
  assets: AssetView[];
}

const world = (a: AssetView): THREE.Vector3 =>
  // Data x/y lie on the floor, z is height: three's Y is up.
  new THREE.Vector3(a.position?.x ?? 0, a.position?.z ?? 0, a.position?.y ?? 0);

/** Above this many assets: no shadows, labels only on anomalies. */
export const DENSE = 150;

export class FloorScene {
  readonly renderer: THREE.WebGLRenderer;
  private readonly scene = new THREE.Scene();
  private readonly camera = new THREE.PerspectiveCamera(45, 1, 0.1, 2000);
  private readonly controls: OrbitControls;
  private readonly labels: HTMLDivElement;
  private readonly assetsGroup = new THREE.Group();
  private readonly floorGroup = new THREE.Group();
  private readonly sun: THREE.DirectionalLight;
  private readonly hemi: THREE.HemisphereLight;
  private readonly shapes = new Map<Shape, ShapeSpec>();
  private readonly gltf = new Map<Shape, THREE.Object3D | 'loading' | 'failed'>();
  private readonly materials: Record<PartRole, THREE.MeshStandardMaterial>;
  private readonly ringGeo = new THREE.RingGeometry(0.86, 1, 48).rotateX(-Math.PI / 2);
  private readonly beaconGeo = new THREE.SphereGeometry(0.16, 20, 14);
  private readonly ringMat = new THREE.MeshBasicMaterial({
    transparent: true,
    opacity: 0.9,
    toneMapped: false,
  });
  private readonly beaconMat = new THREE.MeshBasicMaterial({ toneMapped: false });
  private readonly haloMat = new THREE.MeshBasicMaterial({
    transparent: true,
    opacity: 0.6,
    toneMapped: false,
    depthWrite: false,
    blending: THREE.AdditiveBlending,
  });
  private style: FloorStyle;
  private assets: AssetView[] = [];
  private layoutKey = '';
  private pickables: Pickable[] = [];
  private accentMeshes: { mesh: THREE.InstancedMesh; assets: AssetView[] }[] = [];
  private rings?: THREE.InstancedMesh;
  private beacons?: THREE.InstancedMesh;
  private halos?: THREE.InstancedMesh;
  private haloAssets: AssetView[] = [];
  private gltfClones: { object: THREE.Object3D; asset: AssetView }[] = [];
  private labelEls = new Map<string, HTMLDivElement>();
  private labelText: (a: AssetView) => string[] = () => [];
  private raf = 0;
  private dirty = true;
  private labelsDirty = true;
  private fitted = '';
  private disposed = false;
  private downAt: { x: number; y: number } | null = null;
  private readonly raycaster = new THREE.Raycaster();
  private readonly tmpM = new THREE.Matrix4();
  private readonly tmpC = new THREE.Color();
  /** Frames rendered and the time the last one took (ms): read by the benchmark. */
  readonly stats = { frames: 0, lastRenderMs: 0 };

  constructor(
    private readonly container: HTMLElement,
    style: FloorStyle,
    private readonly callbacks: FloorCallbacks,
    private modelUrls: Record<Shape, string>,
    private readonly baseUrl: string,
  ) {
    this.style = style;
    // preserveDrawingBuffer: screenshots and pixel checks read the canvas after compositing.
    this.renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
    this.renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
    this.renderer.shadowMap.enabled = true;
    this.renderer.shadowMap.type = THREE.PCFSoftShadowMap;
    this.renderer.toneMapping = THREE.NeutralToneMapping;
    const canvas = this.renderer.domElement;
    canvas.style.display = 'block';
    canvas.setAttribute('data-testid', 'evtwin-floor-canvas');
    container.appendChild(canvas);

    this.labels = document.createElement('div');
    Object.assign(this.labels.style, {
      position: 'absolute',
      inset: '0',
      pointerEvents: 'none',
      overflow: 'hidden',
    });
    container.appendChild(this.labels);

    this.materials = {
      body: new THREE.MeshStandardMaterial({ roughness: 0.55, metalness: 0.15 }),
      dark: new THREE.MeshStandardMaterial({ roughness: 0.45, metalness: 0.35 }),
      glass: new THREE.MeshStandardMaterial({
        roughness: 0.08,
        metalness: 0.1,
        transparent: true,
        opacity: 0.45,
      }),
      accent: new THREE.MeshStandardMaterial({ roughness: 0.4, metalness: 0.1, emissiveIntensity: 0.35 }),
    };
    this.materials.accent.emissive = new THREE.Color(0x222222);

    this.hemi = new THREE.HemisphereLight(0xffffff, 0x444444, 1.6);
    this.scene.add(this.hemi);
    this.sun = new THREE.DirectionalLight(0xffffff, 2.2);
    this.sun.castShadow = true;
    this.sun.shadow.mapSize.set(2048, 2048);
    this.sun.shadow.bias = -0.0005;
    this.scene.add(this.sun, this.sun.target, this.floorGroup, this.assetsGroup);

    this.controls = new OrbitControls(this.camera, canvas);
    this.controls.enableDamping = true;
    this.controls.maxPolarAngle = Math.PI * 0.48;
    this.controls.addEventListener('change', () => {
      this.dirty = true;
      this.labelsDirty = true;
    });

    canvas.addEventListener('pointermove', this.onMove);
    canvas.addEventListener('pointerleave', this.onLeave);
    canvas.addEventListener('pointerdown', this.onDown);
    canvas.addEventListener('pointerup', this.onUp);
    this.applyStyle();
    this.loop();
  }

  setStyle(style: FloorStyle): void {
    this.style = style;
    this.applyStyle();
    this.recolour();
    this.restyleLabels();
  }

  setModelUrls(urls: Record<Shape, string>): void {
    if (SHAPES.every((s) => urls[s] === this.modelUrls[s])) return;
    this.modelUrls = urls;
    this.gltf.clear();
    this.layoutKey = '';
    this.setAssets(this.assets, this.labelText);
  }

  /** New data: a rebuild when assets moved, came or went; otherwise only colours, halos and labels. */
  setAssets(assets: AssetView[], labelText: (a: AssetView) => string[]): void {
    this.assets = assets;
    this.labelText = labelText;
    const key = assets
      .map((a) => `${a.key}|${a.shape}|${a.position?.x},${a.position?.y},${a.position?.z}`)
      .join(';');
    if (key !== this.layoutKey) {
      this.layoutKey = key;
      this.rebuild();
    } else {
      this.recolour();
    }
    this.updateHalos();
    this.updateLabels();
    this.dirty = true;
  }

  resize(width: number, height: number): void {
    this.renderer.setSize(width, height, true);
    this.camera.aspect = width / Math.max(1, height);
    this.camera.updateProjectionMatrix();
    this.dirty = true;
    this.labelsDirty = true;
  }

  /** Screen position (CSS px, relative to the canvas) of an asset's beacon. */
  project(a: AssetView): { x: number; y: number } {
    const p = world(a).add(this.beaconFor(a)).project(this.camera);
    const el = this.renderer.domElement;
    return { x: ((p.x + 1) / 2) * el.clientWidth, y: ((1 - p.y) / 2) * el.clientHeight };
  }

  dispose(): void {
    this.disposed = true;
    cancelAnimationFrame(this.raf);
    const canvas = this.renderer.domElement;
    canvas.removeEventListener('pointermove', this.onMove);
    canvas.removeEventListener('pointerleave', this.onLeave);
    canvas.removeEventListener('pointerdown', this.onDown);
    canvas.removeEventListener('pointerup', this.onUp);
    this.controls.dispose();
    this.clearAssets();
    this.clearFloor();
    for (const s of this.shapes.values()) Object.values(s.parts).forEach((g) => g?.dispose());
    Object.values(this.materials).forEach((m) => m.dispose());
    [this.ringGeo, this.beaconGeo, this.ringMat, this.beaconMat, this.haloMat].forEach((d) => d.dispose());
    for (const g of this.gltf.values()) if (typeof g !== 'string') disposeObject(g);
    this.sun.shadow.map?.dispose();
    this.renderer.renderLists.dispose();
    this.renderer.dispose();
    this.renderer.forceContextLoss();
    canvas.remove();
    this.labels.remove();
  }

  // ---- drawing ----

  private loop = (): void => {
    if (this.disposed) return;
    this.raf = requestAnimationFrame(this.loop);
    this.controls.update();
    const pulsing = this.haloAssets.length > 0;
    if (!this.dirty && !pulsing) return;
    if (pulsing) this.pulse(performance.now());
    const t0 = performance.now();
    this.renderer.render(this.scene, this.camera);
    this.stats.lastRenderMs = performance.now() - t0;
    this.stats.frames++;
    this.dirty = false;
    if (this.labelsDirty) this.placeLabels();
    if (this.stats.frames === 1) this.container.setAttribute('data-rendered', '1');
    // For the benchmark: what the GL work of a frame costs, apart from the browser's own.
    if (this.stats.frames % 10 === 1)
      this.container.setAttribute('data-render-ms', this.stats.lastRenderMs.toFixed(1));
  };

  private applyStyle(): void {
    const s = this.style;
    this.renderer.setClearColor(new THREE.Color(s.background), 1);
    this.materials.body.color.set(s.body);
    this.materials.dark.color.set(s.dark);
    this.materials.glass.color.set(s.glass);
    this.materials.accent.color.set(0xffffff);
    this.buildFloor();
    this.dirty = true;
  }

  private shapeSpec(shape: Shape): ShapeSpec {
    let spec = this.shapes.get(shape);
    if (!spec) {
      spec = buildShape(shape);
      this.shapes.set(shape, spec);
    }
    return spec;
  }

  private beaconFor(a: AssetView): THREE.Vector3 {
    const g = this.gltf.get(a.shape);
    if (g && typeof g !== 'string') {
      const b = new THREE.Box3().setFromObject(g);
      return new THREE.Vector3(0, b.max.y + 0.3, 0);
    }
    return beaconOf(a.shape);
  }

  private clearAssets(): void {
    for (const child of [...this.assetsGroup.children]) {
      this.assetsGroup.remove(child);
      if (child instanceof THREE.InstancedMesh) child.dispose();
    }
    for (const c of this.gltfClones) disposeClone(c.object);
    this.gltfClones = [];
    this.pickables = [];
    this.accentMeshes = [];
    this.rings = undefined;
    this.beacons = undefined;
    this.halos = undefined;
  }

  private rebuild(): void {
    this.clearAssets();
    const assets = this.assets;
    // Dense floors drop shadows: on software GL (no GPU) the shadow pass doubles an already long frame.
    const shadows = assets.length <= DENSE;
    if (this.renderer.shadowMap.enabled !== shadows) {
      this.renderer.shadowMap.enabled = shadows;
      this.sun.castShadow = shadows;
      Object.values(this.materials).forEach((m) => (m.needsUpdate = true));
    }
    const byShape = new Map<Shape, AssetView[]>();
    for (const a of assets) {
      const list = byShape.get(a.shape) ?? [];
      list.push(a);
      byShape.set(a.shape, list);
    }
    for (const [shape, list] of byShape) {
      const model = this.gltfFor(shape);
      if (model) this.placeClones(model, list);
      else this.placeInstances(shape, list);
    }
    if (assets.length > 0) {
      this.rings = new THREE.InstancedMesh(this.ringGeo, this.ringMat, assets.length);
      this.beacons = new THREE.InstancedMesh(this.beaconGeo, this.beaconMat, assets.length);
      assets.forEach((a, i) => {
        const p = world(a);
        const r = ringOf(a.shape);
        this.tmpM.makeScale(r, 1, r).setPosition(p.x, p.y + 0.012, p.z);
        this.rings?.setMatrixAt(i, this.tmpM);
        const b = p.clone().add(this.beaconFor(a));
        this.tmpM.makeTranslation(b.x, b.y, b.z);
        this.beacons?.setMatrixAt(i, this.tmpM);
      });
      this.assetsGroup.add(this.rings, this.beacons);
      this.pickables.push({ mesh: this.beacons, assets });
    }
    this.recolour();
    this.fitCamera();
    this.rebuildLabels();
  }

  private placeInstances(shape: Shape, list: AssetView[]): void {
    const spec = this.shapeSpec(shape);
    for (const [role, geo] of Object.entries(spec.parts) as [PartRole, THREE.BufferGeometry][]) {
      const mesh = new THREE.InstancedMesh(geo, this.materials[role], list.length);
      mesh.castShadow = role !== 'glass';
      mesh.receiveShadow = true;
      list.forEach((a, i) => {
        const p = world(a);
        this.tmpM.makeTranslation(p.x, p.y, p.z);
        mesh.setMatrixAt(i, this.tmpM);
      });
      mesh.computeBoundingSphere();
      this.assetsGroup.add(mesh);
      this.pickables.push({ mesh, assets: list });
      if (role === 'accent') this.accentMeshes.push({ mesh, assets: list });
    }
  }

  private placeClones(model: THREE.Object3D, list: AssetView[]): void {
    for (const a of list) {
      const o = model.clone(true);
      o.position.copy(world(a));
      o.traverse((c) => {
        if (c instanceof THREE.Mesh) {
          c.castShadow = true;
          c.receiveShadow = true;
        }
      });
      this.assetsGroup.add(o);
      this.gltfClones.push({ object: o, asset: a });
      this.pickables.push({ mesh: o, assets: [a] });
    }
  }

  /** The loaded glTF of a shape, or undefined (not asked for, loading, or failed: the procedural model). */
  private gltfFor(shape: Shape): THREE.Object3D | undefined {
    const url = this.modelUrls[shape]?.trim();
    if (!url) return undefined;
    const have = this.gltf.get(shape);
    if (have === 'loading' || have === 'failed') return undefined;
    if (have) return have;
    this.gltf.set(shape, 'loading');
    const full = new URL(url, new URL(this.baseUrl, document.baseURI)).href;
    new GLTFLoader()
      .loadAsync(full)
      .then((gltf) => {
        if (this.disposed) return disposeObject(gltf.scene);
        // Fit the model to the procedural footprint, standing on the floor.
        const box = new THREE.Box3().setFromObject(gltf.scene);
        const size = box.getSize(new THREE.Vector3());
        const s = (ringOf(shape) * 1.5) / Math.max(size.x, size.z, 1e-6);
        const holder = new THREE.Group();
        gltf.scene.scale.setScalar(s);
        gltf.scene.position.set(
          -((box.min.x + box.max.x) / 2) * s,
          -box.min.y * s,
          -((box.min.z + box.max.z) / 2) * s,
        );
        holder.add(gltf.scene);
        this.gltf.set(shape, holder);
        this.layoutKey = '';
        this.setAssets(this.assets, this.labelText);
      })
      .catch((e: unknown) => {
        this.gltf.set(shape, 'failed');
        this.callbacks.onProblem(
          `Model for ${shape} (${url}) did not load: ${e instanceof Error ? e.message : String(e)}`,
        );
      });
    return undefined;
  }

  private recolour(): void {
    const colourOf = (a: AssetView): THREE.Color => this.tmpC.set(this.style.color(a.color));
    for (const { mesh, assets } of this.accentMeshes) {
      assets.forEach((a, i) => mesh.setColorAt(i, colourOf(a)));
      if (mesh.instanceColor) mesh.instanceColor.needsUpdate = true;
    }
    for (const m of [this.rings, this.beacons]) {
      if (!m) continue;
      this.assets.forEach((a, i) => m.setColorAt(i, colourOf(a)));
      if (m.instanceColor) m.instanceColor.needsUpdate = true;
    }
    this.dirty = true;
  }

  private updateHalos(): void {
    const anomalies = this.assets.filter((a) => a.anomaly);
    const same =
      this.halos &&
      anomalies.length === this.haloAssets.length &&
      anomalies.every((a, i) => a === this.haloAssets[i]);
    if (same) return;
    if (this.halos) {
      this.assetsGroup.remove(this.halos);
      this.halos.dispose();
      this.halos = undefined;
    }
    this.haloAssets = anomalies;
    if (anomalies.length === 0) return;
    this.halos = new THREE.InstancedMesh(this.ringGeo, this.haloMat, anomalies.length);
    this.halos.setColorAt(0, this.tmpC.set(this.style.color('red')));
    anomalies.forEach((_, i) => this.halos?.setColorAt(i, this.tmpC));
    this.assetsGroup.add(this.halos);
  }

  /** Anomalies: halos grow and fade once a second, beacons swell, accents glow. */
  private pulse(now: number): void {
    const phase = (now % 1200) / 1200;
    const halos = this.halos;
    if (!halos) return;
    this.haloAssets.forEach((a, i) => {
      const p = world(a);
      const r = ringOf(a.shape) * (1 + phase * 0.9);
      this.tmpM.makeScale(r, 1, r).setPosition(p.x, p.y + 0.02, p.z);
      halos.setMatrixAt(i, this.tmpM);
    });
    halos.instanceMatrix.needsUpdate = true;
    this.haloMat.opacity = 0.75 * (1 - phase);
    this.materials.accent.emissiveIntensity = 0.35 + 0.5 * Math.sin(phase * Math.PI);
  }

  private clearFloor(): void {
    for (const c of [...this.floorGroup.children]) {
      this.floorGroup.remove(c);
      disposeObject(c);
    }
  }

  private buildFloor(): void {
    this.clearFloor();
    const { min, max } = this.extent();
    const w = max.x - min.x + 8;
    const d = max.z - min.z + 8;
    const size = Math.ceil(Math.max(w, d) / 2) * 2;
    const cx = (min.x + max.x) / 2;
    const cz = (min.z + max.z) / 2;
    const plane = new THREE.Mesh(
      new THREE.PlaneGeometry(size, size).rotateX(-Math.PI / 2),
      new THREE.MeshStandardMaterial({ color: this.style.floor, roughness: 0.9 }),
    );
    plane.position.set(cx, 0, cz);
    plane.receiveShadow = true;
    const grid = new THREE.GridHelper(size, size, this.style.grid, this.style.grid);
    grid.position.set(cx, 0.004, cz);
    const gm = grid.material;
    if (!Array.isArray(gm)) {
      gm.transparent = true;
      gm.opacity = 0.45;
    }
    this.floorGroup.add(plane, grid);
    // The sun's shadow camera covers the floor.
    const half = size / 2 + 2;
    const cam = this.sun.shadow.camera;
    cam.left = -half;
    cam.right = half;
    cam.top = half;
    cam.bottom = -half;
    cam.near = 0.5;
    cam.far = size * 3 + 40;
    cam.updateProjectionMatrix();
    this.sun.position.set(cx - size * 0.4, size * 0.9 + 10, cz + size * 0.6);
    this.sun.target.position.set(cx, 0, cz);
  }

  private extent(): { min: THREE.Vector3; max: THREE.Vector3 } {
    const min = new THREE.Vector3(Infinity, 0, Infinity);
    const max = new THREE.Vector3(-Infinity, 0, -Infinity);
    for (const a of this.assets) {
      const p = world(a);
      min.min(p);
      max.max(p);
    }
    if (!Number.isFinite(min.x))
      return { min: new THREE.Vector3(-4, 0, -4), max: new THREE.Vector3(4, 0, 4) };
    return { min, max };
  }

  private fitCamera(): void {
    const { min, max } = this.extent();
    // The highest beacon: a tall glTF model must stay in view, beacon and label included.
    const beaconY = new Map<Shape, number>();
    let top = 0;
    for (const a of this.assets) {
      let y = beaconY.get(a.shape);
      if (y === undefined) beaconY.set(a.shape, (y = this.beaconFor(a).y));
      top = Math.max(top, (a.position?.z ?? 0) + y);
    }
    const key = `${min.x},${min.z},${max.x},${max.z},${top.toFixed(2)}`;
    this.buildFloor();
    if (key === this.fitted) return;
    this.fitted = key;
    const c = new THREE.Vector3((min.x + max.x) / 2, Math.max(0.8, top * 0.3), (min.z + max.z) / 2);
    const span = Math.max(
      max.x - min.x + 5,
      (max.z - min.z + 5) * Math.max(1, this.camera.aspect * 0.8),
      top * 1.6 + 2,
      8,
    );
    let dist =
      span /
      (2 * Math.tan(THREE.MathUtils.degToRad(this.camera.fov / 2))) /
      Math.max(0.6, Math.min(this.camera.aspect, 1.6));
    const place = (): void => {
      this.camera.position.set(c.x + dist * 0.18, c.y + dist * 0.62, c.z + dist * 0.82);
      this.camera.lookAt(c);
      this.camera.updateMatrixWorld();
    };
    place();
    // Tall (glTF) models in the back row can still reach past the top edge: back off until their beacons show.
    if (top > 3) {
      this.camera.updateProjectionMatrix();
      const v = new THREE.Vector3();
      for (let i = 0; i < 10; i++) {
        if (![min.x, max.x].some((x) => v.set(x, top + 0.6, min.z).project(this.camera).y > 0.8)) break;
        dist *= 1.15;
        place();
      }
    }
    this.camera.near = Math.max(0.05, dist / 200);
    this.camera.far = dist * 20 + 100;
    this.camera.updateProjectionMatrix();
    this.controls.target.copy(c);
    this.controls.maxDistance = dist * 4;
    this.controls.update();
    this.labelsDirty = true;
  }

  // ---- labels ----

  private rebuildLabels(): void {
    this.labels.replaceChildren();
    this.labelEls.clear();
    for (const a of this.assets) {
      const anchor = document.createElement('div');
      anchor.dataset.asset = a.key;
      anchor.className = 'evtwin-anchor';
      Object.assign(anchor.style, { position: 'absolute', left: '0', top: '0', width: '0', height: '0' });
      const label = document.createElement('div');
      Object.assign(label.style, {
        position: 'absolute',
        left: '0',
        bottom: '14px',
        transform: 'translateX(-50%)',
        whiteSpace: 'nowrap',
        font: `11px/1.3 ${this.style.fontFamily}`,
        padding: '2px 6px',
        borderRadius: '3px',
      });
      anchor.appendChild(label);
      this.labels.appendChild(anchor);
      this.labelEls.set(a.key, anchor);
    }
    this.restyleLabels();
    this.labelsDirty = true;
  }

  private restyleLabels(): void {
    for (const el of this.labelEls.values()) {
      const label = el.firstElementChild as HTMLDivElement | null;
      if (!label) continue;
      label.style.background = this.style.labelBg;
      label.style.color = this.style.labelText;
      label.style.border = `1px solid ${this.style.labelBorder}`;
    }
  }

  private updateLabels(): void {
    for (const a of this.assets) {
      const el = this.labelEls.get(a.key);
      const label = el?.firstElementChild as HTMLDivElement | null | undefined;
      if (!el || !label) continue;
      el.dataset.color = this.style.color(a.color);
      el.dataset.level = a.level;
      el.dataset.anomaly = a.anomaly ? '1' : '0';
      // Dense floors label only anomalies; hover still shows every asset's values.
      const lines = this.assets.length > DENSE && !a.anomaly ? [] : this.labelText(a);
      el.style.display = this.assets.length > DENSE && !a.anomaly ? 'none' : '';
      label.style.display = lines.length ? 'block' : 'none';
      const dot = `<span style="display:inline-block;width:8px;height:8px;border-radius:50%;margin-right:4px;background:${el.dataset.color}"></span>`;
      label.innerHTML = `${dot}<b>${escapeHtml(a.name)}</b>${lines.map((l) => `<br>${escapeHtml(l)}`).join('')}`;
    }
  }

  private placeLabels(): void {
    this.labelsDirty = false;
    for (const a of this.assets) {
      const el = this.labelEls.get(a.key);
      if (!el) continue;
      const { x, y } = this.project(a);
      el.style.transform = `translate(${x.toFixed(1)}px, ${y.toFixed(1)}px)`;
    }
  }

  // ---- pointer ----

  private pick(e: PointerEvent): AssetView | null {
    const rect = this.renderer.domElement.getBoundingClientRect();
    const ndc = new THREE.Vector2(
      ((e.clientX - rect.left) / rect.width) * 2 - 1,
      -((e.clientY - rect.top) / rect.height) * 2 + 1,
    );
    this.raycaster.setFromCamera(ndc, this.camera);
    let best: { d: number; a: AssetView } | null = null;
    for (const p of this.pickables) {
      for (const hit of this.raycaster.intersectObject(p.mesh, true)) {
        const a =
          hit.instanceId !== undefined && p.mesh instanceof THREE.InstancedMesh
            ? p.assets[hit.instanceId]
            : p.assets[0];
        if (a && (!best || hit.distance < best.d)) best = { d: hit.distance, a };
        break;
      }
    }
    return best?.a ?? null;
  }

  private onMove = (e: PointerEvent): void => {
    if (e.buttons) return;
    const a = this.pick(e);
    this.renderer.domElement.style.cursor = a ? 'pointer' : 'grab';
    this.callbacks.onHover(a, e.clientX, e.clientY);
  };
  private onLeave = (): void => this.callbacks.onHover(null, 0, 0);
  private onDown = (e: PointerEvent): void => {
    this.downAt = { x: e.clientX, y: e.clientY };
  };
  private onUp = (e: PointerEvent): void => {
    const d = this.downAt;
    this.downAt = null;
    if (!d || Math.hypot(e.clientX - d.x, e.clientY - d.y) > 5) return;
    const a = this.pick(e);
    if (a) this.callbacks.onClick(a);
  };
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function disposeObject(o: THREE.Object3D): void {
  o.traverse((c) => {
    if (c instanceof THREE.Mesh || c instanceof THREE.LineSegments) {
      c.geometry.dispose();
      const m: THREE.Material | THREE.Material[] = c.material;
      (Array.isArray(m) ? m : [m]).forEach((x) => x.dispose());
    }
  });
}

/** Clones share geometry and materials with the loaded model: nothing of theirs to free. */
function disposeClone(o: THREE.Object3D): void {
  o.removeFromParent();
}
