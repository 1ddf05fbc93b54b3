/// <reference types="node" />
/**
 * `npm run size`: prints the size report of scripts/size.ts.
 */
import { format, measure } from "./size.js"

console.log(format(await measure()))
