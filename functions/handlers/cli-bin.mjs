#!/usr/bin/env node
// `npx sparse-lavida …`: Node 20 cannot load .ts files, so tsx's loader is registered before
// the CLI is imported (dynamically: a static import would run before register()).
import { register } from 'tsx/esm/api';

register();
await import('./cli.ts');
