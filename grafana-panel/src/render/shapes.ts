/**
 * Procedural models per shape, built once as merged geometries per material role so that a floor of
 * hundreds of assets draws as a few instanced meshes. Y is up; the footprint is centred on the origin;
 * units are metres (the asset model's x/y).
 */
import * as THREE from 'three';
import { mergeGeometries } from 'three/examples/jsm/utils/BufferGeometryUtils.js';
import type { Shape } from '../types';

/** body: light paint; dark: frames and joints; glass: windows and screens; accent: painted in status colour. */
export type PartRole = 'body' | 'dark' | 'glass' | 'accent';

export interface ShapeSpec {
  parts: Partial<Record<PartRole, THREE.BufferGeometry>>;
  /** Where the status beacon sits (top of the model, visible from above). */
  beacon: THREE.Vector3;
  /** Radius of the status ring on the floor. */
  ring: number;
}

type Piece = [PartRole, THREE.BufferGeometry];

const at = (g: THREE.BufferGeometry, x: number, y: number, z: number): THREE.BufferGeometry =>
  g.translate(x, y, z);
const box = (w: number, h: number, d: number, x: number, y: number, z: number): THREE.BufferGeometry =>
  at(new THREE.BoxGeometry(w, h, d), x, y, z);
const cyl = (r: number, h: number, x: number, y: number, z: number, seg = 20): THREE.BufferGeometry =>
  at(new THREE.CylinderGeometry(r, r, h, seg), x, y, z);
const ball = (r: number, x: number, y: number, z: number): THREE.BufferGeometry =>
  at(new THREE.SphereGeometry(r, 16, 10), x, y, z);

/** A box of thickness t from a to b (arm links). */
function link(a: THREE.Vector3, b: THREE.Vector3, t: number, d = t): THREE.BufferGeometry {
  const dir = new THREE.Vector3().subVectors(b, a);
  const g = new THREE.BoxGeometry(t, dir.length(), d);
  const q = new THREE.Quaternion().setFromUnitVectors(new THREE.Vector3(0, 1, 0), dir.clone().normalize());
  g.applyQuaternion(q);
  const mid = new THREE.Vector3().addVectors(a, b).multiplyScalar(0.5);
  return g.translate(mid.x, mid.y, mid.z);
}

function cnc(): Piece[] {
  return [
    ['dark', box(2.6, 0.25, 1.8, 0, 0.125, 0)],
    ['body', box(2.4, 1.5, 1.6, -0.15, 1.0, 0)],
    ['dark', box(2.44, 0.08, 1.64, -0.15, 1.79, 0)],
    // control cabinet with its screen
    ['body', box(0.55, 1.75, 1.2, 1.35, 1.0, -0.1)],
    ['glass', box(0.02, 0.45, 0.55, 1.63, 1.3, 0.1)],
    ['dark', box(0.02, 0.12, 0.55, 1.63, 0.95, 0.1)],
    // front window: the spindle and table show through it
    ['glass', box(1.5, 0.85, 0.03, -0.25, 1.15, 0.81)],
    ['dark', box(1.6, 0.05, 0.05, -0.25, 1.6, 0.82)],
    ['dark', box(1.6, 0.05, 0.05, -0.25, 0.7, 0.82)],
    ['dark', box(0.05, 0.9, 0.05, 0.58, 1.15, 0.82)],
    ['dark', box(0.3, 0.3, 0.3, -0.25, 1.45, 0.35)],
    ['dark', cyl(0.07, 0.35, -0.25, 1.15, 0.35)],
    ['body', cyl(0.025, 0.15, -0.25, 0.92, 0.35, 10)],
    ['dark', box(1.2, 0.1, 0.7, -0.25, 0.75, 0.2)],
    // status stripe and stack light
    ['accent', box(2.42, 0.06, 0.02, -0.15, 1.7, 0.815)],
    ['dark', cyl(0.035, 0.4, 1.35, 2.07, -0.5, 10)],
  ];
}

function robot(): Piece[] {
  const shoulder = new THREE.Vector3(0, 0.95, 0);
  const elbow = new THREE.Vector3(0.35, 1.95, 0);
  const wrist = new THREE.Vector3(1.2, 1.72, 0);
  const tool = new THREE.Vector3(1.2, 1.35, 0);
  return [
    ['dark', cyl(0.45, 0.22, 0, 0.11, 0)],
    ['body', cyl(0.32, 0.45, 0, 0.45, 0)],
    ['accent', cyl(0.335, 0.07, 0, 0.55, 0)],
    ['dark', cyl(0.36, 0.15, 0, 0.75, 0)],
    ['dark', ball(0.23, shoulder.x, shoulder.y, shoulder.z)],
    ['body', link(shoulder, elbow, 0.24, 0.3)],
    ['dark', ball(0.18, elbow.x, elbow.y, elbow.z)],
    ['body', link(elbow, wrist, 0.18, 0.22)],
    ['dark', ball(0.12, wrist.x, wrist.y, wrist.z)],
    ['dark', link(wrist, tool, 0.09)],
    ['dark', box(0.05, 0.16, 0.05, 1.2, 1.22, 0.07)],
    ['dark', box(0.05, 0.16, 0.05, 1.2, 1.22, -0.07)],
    // controller cabinet carrying the stack light
    ['body', box(0.5, 0.9, 0.45, -0.8, 0.45, -0.3)],
    ['glass', box(0.3, 0.2, 0.02, -0.8, 0.68, -0.07)],
    ['dark', cyl(0.03, 0.2, -0.8, 1.0, -0.3, 10)],
  ];
}

function sensor(): Piece[] {
  const pipe = new THREE.CylinderGeometry(0.18, 0.18, 2.0, 24).rotateZ(Math.PI / 2).translate(0.35, 0.45, 0);
  const flange = (x: number): THREE.BufferGeometry =>
    new THREE.CylinderGeometry(0.27, 0.27, 0.08, 24).rotateZ(Math.PI / 2).translate(x, 0.45, 0);
  const head = new THREE.CylinderGeometry(0.2, 0.2, 0.2, 24).rotateX(Math.PI / 2).translate(0.55, 1.0, 0);
  const display = new THREE.CylinderGeometry(0.15, 0.15, 0.02, 24)
    .rotateX(Math.PI / 2)
    .translate(0.55, 1.0, 0.11);
  return [
    // tank with a domed roof
    ['body', cyl(0.55, 1.2, -0.75, 0.6, 0, 32)],
    [
      'body',
      new THREE.SphereGeometry(0.55, 32, 12, 0, Math.PI * 2, 0, Math.PI / 2)
        .scale(1, 0.35, 1)
        .translate(-0.75, 1.2, 0),
    ],
    ['accent', cyl(0.56, 0.08, -0.75, 0.95, 0, 32)],
    ['dark', cyl(0.6, 0.08, -0.75, 0.04, 0, 32)],
    // outlet pipe with flanges, supports and a transmitter
    ['body', pipe],
    ['dark', flange(0.05)],
    ['dark', flange(1.05)],
    ['dark', box(0.1, 0.28, 0.3, 0.9, 0.14, 0)],
    ['dark', cyl(0.05, 0.35, 0.55, 0.78, 0, 12)],
    ['body', head],
    ['glass', display],
  ];
}

function charger(): Piece[] {
  const cable = new THREE.TorusGeometry(0.22, 0.03, 8, 24, Math.PI).rotateZ(Math.PI).translate(0.42, 1.0, 0);
  return [
    ['dark', box(0.9, 0.06, 0.6, 0, 0.03, 0)],
    ['body', box(0.55, 1.7, 0.35, 0, 0.9, 0)],
    ['dark', box(0.62, 0.08, 0.42, 0, 1.79, 0)],
    ['glass', box(0.36, 0.28, 0.02, 0, 1.38, 0.18)],
    ['accent', box(0.04, 0.95, 0.02, -0.22, 0.8, 0.18)],
    ['accent', box(0.04, 0.95, 0.02, 0.22, 0.8, 0.18)],
    ['dark', box(0.12, 0.2, 0.14, 0.33, 1.2, 0)],
    ['dark', cable],
  ];
}

function generic(): Piece[] {
  return [
    ['dark', box(1.1, 0.1, 1.1, 0, 0.05, 0)],
    ['body', box(1, 0.9, 1, 0, 0.55, 0)],
    ['accent', box(1.02, 0.06, 1.02, 0, 0.9, 0)],
  ];
}

const BUILDERS: Record<Shape, { pieces: () => Piece[]; beacon: [number, number, number]; ring: number }> = {
  cnc: { pieces: cnc, beacon: [1.35, 2.35, -0.5], ring: 1.75 },
  robot: { pieces: robot, beacon: [-0.8, 1.2, -0.3], ring: 1.35 },
  sensor: { pieces: sensor, beacon: [-0.75, 1.55, 0], ring: 1.35 },
  charger: { pieces: charger, beacon: [0, 2.0, 0], ring: 0.7 },
  generic: { pieces: generic, beacon: [0, 1.2, 0], ring: 0.9 },
};

/** Merge each role's pieces into one geometry (all builders are indexed: mergeGeometries needs that). */
export function buildShape(shape: Shape): ShapeSpec {
  const b = BUILDERS[shape];
  const byRole = new Map<PartRole, THREE.BufferGeometry[]>();
  for (const [role, g] of b.pieces()) {
    const list = byRole.get(role) ?? [];
    list.push(g.index ? g : g);
    byRole.set(role, list);
  }
  const parts: Partial<Record<PartRole, THREE.BufferGeometry>> = {};
  for (const [role, list] of byRole) {
    const merged = mergeGeometries(list, false);
    if (merged) parts[role] = merged;
    list.forEach((g) => g.dispose());
  }
  return { parts, beacon: new THREE.Vector3(...b.beacon), ring: b.ring };
}

export const beaconOf = (shape: Shape): THREE.Vector3 => new THREE.Vector3(...BUILDERS[shape].beacon);
export const ringOf = (shape: Shape): number => BUILDERS[shape].ring;
