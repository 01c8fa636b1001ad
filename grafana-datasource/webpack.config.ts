import path from 'path';
import type { Configuration } from 'webpack';
import grafanaConfig, { type Env } from './.config/webpack/webpack.config';

// Both plugins share the hoisted node_modules: give each its own webpack cache, or a rebuild of one
// can serve the other's plugin.json (seen here, NOTES.md).
const config = async (env: Env): Promise<Configuration> => {
  const base = await grafanaConfig(env);
  return {
    ...base,
    cache: { type: 'filesystem', cacheDirectory: path.resolve(__dirname, '.cache', 'webpack') },
  };
};

export default config;
