/**
 * model-updater/testing: the deterministic world the library is tested in, for hosts to test their own
 * hooks against random failure schedules. Node only; needs fast-check (a peer dependency).
 */
export { simulate, assertSimulation, simulationProperty, SimulationFailure, type SimulateOptions, type SimulationReport, type Counterexample } from './simulate.js';
export { SimulatedWorld, type SimulatedHost, type SimulatedHooks, type SimulatedWorldOptions, type ReportedError } from './simulatedWorld.js';
export { MemoryUpdateService, type ServiceFaults, type ServedFile, type PublishOptions } from './memoryUpdateService.js';
export { MemoryModelStore, type WriteFault, type MemoryModelStoreOptions } from './memoryModelStore.js';
export { MemoryStagingArea } from './memoryStagingArea.js';
export { memoryTransport } from './memoryTransport.js';
export { MemoryLogDisk, MemoryEventLog, type AppendFault } from './memoryEventLog.js';
export { SimulatedLoader, type HookFault, type HookName, type SimulatedHandle } from './simulatedLoader.js';
export { SimulatedHostData } from './simulatedHostData.js';
export { SimulatedProcess } from './simulatedProcess.js';
export { checkInvariants, InvariantViolation, FIRST_OBSERVATION, type Observation } from './invariants.js';
export { simulationCommands, storyCommands, installedHistory, initialModel, UpdateCommand, RollbackCommand, type CrashPoint, type Interruption, type Fault, type SimulationModel, type SimulationCommand } from './commands.js';
export { correctHooks } from './defaultHooks.js';
