// vite.config.js - build of the Nonflex web app into client-dist/dist,
// which nginx serves at / (conf/nginx.conf.in).  `npm run dev` proxies the
// API to a running stack (conf/stack, NONFLEX_HTTP_PORT, default 8080).
// SPDX-License-Identifier: MIT
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

const api = `http://127.0.0.1:${process.env.NONFLEX_HTTP_PORT || 8080}`;

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: 'dist',
    // The CSP allows scripts and styles from 'self' only: no inline code.
    assetsInlineLimit: 0,
    sourcemap: false,
  },
  server: {
    host: '127.0.0.1',
    proxy: { '/api': api, '/webhooks': api },
  },
});
