import { makeMemory } from "../src/internal/engine/store.js"
import { engineConformance } from "./suites/engine.js"
import { freshStore, storeConformance } from "./suites/store.js"

storeConformance("memory", freshStore(makeMemory))
engineConformance("memory", freshStore(makeMemory))
