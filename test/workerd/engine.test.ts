import { makeMemory } from "../../src/internal/engine/store.js"
import { engineConformance } from "../suites/engine.js"
import { freshStore } from "../suites/store.js"

// The engine runs unchanged inside workerd.
engineConformance("memory store inside workerd", freshStore(makeMemory))
