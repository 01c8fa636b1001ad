// force timezone to UTC to allow tests to work regardless of local timezone
process.env.TZ = 'UTC';

const base = require('./.config/jest.config');
const swc = base.transform['^.+\\.(t|j)sx?$'];

module.exports = {
  ...base,
  // d3-color 3.x (pulled in by @grafana/data) ships .mjs only: run it through the same swc transform.
  transform: { ...base.transform, '^.+\\.mjs$': swc },
};
