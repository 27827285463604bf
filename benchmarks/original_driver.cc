// A timing driver for the C++ original (google-research automl_zero/), used by
// benchmarks/against_original.py, which compiles it against the original's sources in a
// scratch folder. Nothing of the original is in this file: it only calls its public API.
//
//   driver eval ALGORITHM KIND TASKS TRAIN VALID F SECONDS
//       ALGORITHM: linear | neural_net (the original's LINEAR_ALGORITHM, NEURAL_NET_ALGORITHM)
//       KIND: linear | nonlinear (scalar linear regression, the 2-layer teacher network)
//       Evaluates the algorithm on all tasks again and again for about SECONDS of CPU time;
//       prints "us_per_eval=<CPU microseconds per evaluation> evals=<n> fitness=<f>".
//   driver eval_file ALGORITHM PATH SECONDS
//       As eval, on the TaskCollection in the text-format file PATH (e.g. unit_test_fixed_task
//       entries holding another program's examples, any F of 2, 4, 8, 16 or 32).
//   driver search FEC INDIVIDUALS SEED
//       The demo (run_demo.sh's search spec), one experiment, FEC on (1) or off (0), until at
//       least INDIVIDUALS individuals (whole generations of 1000); prints
//       "individuals=<n> cpu_s=<s> per_s=<individuals per CPU second> fitness=<best>".
//   driver nonlinear INDIVIDUALS SEED
//       The nonlinear repair (run_integration_test_nonlinear.sh's search spec, its train
//       budget included; needs the 5/9/2 build), one experiment, as search.

#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <random>
#include <string>

#include "definitions.h"
#include "evaluator.h"
#include "experiment.pb.h"
#include "experiment_util.h"
#include "fec_cache.h"
#include "generator.h"
#include "mutator.h"
#include "random_generator.h"
#include "regularized_evolution.h"
#include "task.pb.h"
#include "task_util.h"
#include "train_budget.h"

namespace {

using automl_zero::Algorithm;
using automl_zero::Evaluator;
using automl_zero::Generator;
using automl_zero::RandomGenerator;

double CpuSeconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

int EvalCollection(const std::string& algorithm_name,
                   const automl_zero::TaskCollection& collection, double seconds) {
  Generator generator(automl_zero::NO_OP_ALGORITHM, 0, 0, 0, {}, {}, {}, nullptr, nullptr);
  const Algorithm algorithm = generator.ModelByID(
      algorithm_name == "linear" ? automl_zero::LINEAR_ALGORITHM
                                 : automl_zero::NEURAL_NET_ALGORITHM);
  std::mt19937 bit_gen(12345);
  RandomGenerator rand_gen(&bit_gen);
  Evaluator evaluator(automl_zero::MEAN_FITNESS_COMBINATION, collection, &rand_gen,
                      nullptr, nullptr, 100.0);
  double fitness = evaluator.Evaluate(algorithm);  // warm the caches
  long evals = 0;
  const double start = CpuSeconds();
  double now = start;
  while (now - start < seconds) {
    for (int i = 0; i < 16; ++i) fitness = evaluator.Evaluate(algorithm);
    evals += 16;
    now = CpuSeconds();
  }
  std::printf("us_per_eval=%.4f evals=%ld fitness=%.6f\n", 1e6 * (now - start) / evals,
              evals, fitness);
  return 0;
}

int Eval(const std::string& algorithm_name, const std::string& kind, int tasks, int train,
         int valid, int dim, double seconds) {
  const std::string task_kind = kind == "linear" ? "scalar_linear_regression_task {}"
                                                 : "scalar_2layer_nn_regression_task {}";
  const std::string spec =
      "tasks { " + task_kind + " features_size: " + std::to_string(dim) +
      " num_train_examples: " + std::to_string(train) +
      " num_valid_examples: " + std::to_string(valid) +
      " num_tasks: " + std::to_string(tasks) +
      " eval_type: RMS_ERROR data_seeds: [1000] param_seeds: [2000] }";
  return EvalCollection(algorithm_name,
                        automl_zero::ParseTextFormat<automl_zero::TaskCollection>(spec),
                        seconds);
}

int EvalFile(const std::string& algorithm_name, const std::string& path, double seconds) {
  std::ifstream file(path);
  if (!file) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    return 1;
  }
  std::stringstream text;
  text << file.rdbuf();
  return EvalCollection(algorithm_name,
                        automl_zero::ParseTextFormat<automl_zero::TaskCollection>(text.str()),
                        seconds);
}

const char kDemoOps[] =
    "[SCALAR_CONST_SET_OP, VECTOR_INNER_PRODUCT_OP, SCALAR_DIFF_OP, SCALAR_PRODUCT_OP, "
    "SCALAR_VECTOR_PRODUCT_OP, VECTOR_SUM_OP]";

std::string DemoSpec(bool fec) {
  std::string spec =
      "search_tasks { tasks { scalar_linear_regression_task {} features_size: 4 "
      "num_train_examples: 100 num_valid_examples: 100 num_tasks: 10 eval_type: RMS_ERROR } } "
      "setup_ops: " + std::string(kDemoOps) + " predict_ops: " + kDemoOps +
      " learn_ops: " + kDemoOps +
      " learn_size_init: 8 setup_size_init: 10 predict_size_init: 2 "
      "fitness_combination_mode: MEAN_FITNESS_COMBINATION population_size: 1000 "
      "tournament_size: 10 initial_population: RANDOM_ALGORITHM "
      "max_train_steps: 200000000000 allowed_mutation_types { mutation_types: "
      "[ALTER_PARAM_MUTATION_TYPE, RANDOMIZE_INSTRUCTION_MUTATION_TYPE, "
      "RANDOMIZE_COMPONENT_FUNCTION_MUTATION_TYPE] } mutate_prob: 0.9 "
      "progress_every: 1000000000000";
  if (fec) spec += " fec { num_train_examples: 10 num_valid_examples: 10 }";
  return spec;
}

// run_integration_test_nonlinear.sh's search spec (progress_every raised: no output).
const char kNonlinearSpec[] =
    "search_tasks { tasks { scalar_2layer_nn_regression_task {} features_size: 4 "
    "num_train_examples: 1000 num_valid_examples: 100 num_tasks: 1 eval_type: RMS_ERROR } } "
    "setup_ops: [VECTOR_GAUSSIAN_SET_OP, MATRIX_GAUSSIAN_SET_OP] predict_ops: [] "
    "learn_ops: [] setup_size_init: 2 predict_size_init: 1 learn_size_init: 4 "
    "train_budget {train_budget_baseline: NEURAL_NET_ALGORITHM} "
    "fitness_combination_mode: MEAN_FITNESS_COMBINATION population_size: 1000 "
    "tournament_size: 10 initial_population: INTEGRATION_TEST_DAMAGED_NEURAL_NET_ALGORITHM "
    "max_train_steps: 100000000000 allowed_mutation_types { mutation_types: "
    "[ALTER_PARAM_MUTATION_TYPE, INSERT_INSTRUCTION_MUTATION_TYPE, "
    "REMOVE_INSTRUCTION_MUTATION_TYPE, TRADE_INSTRUCTION_MUTATION_TYPE] } mutate_prob: 1.0 "
    "mutate_setup_size_min: 6 mutate_setup_size_max: 7 mutate_predict_size_min: 3 "
    "mutate_predict_size_max: 4 mutate_learn_size_min: 9 mutate_learn_size_max: 10 "
    "progress_every: 1000000000000";

// One experiment as run_search_experiment runs it (same order of construction, so the same
// random streams), until at least `individuals` individuals.
int Search(const std::string& spec, bool randomize_task_seeds, long individuals,
           unsigned seed) {
  const double start = CpuSeconds();
  auto experiment = automl_zero::ParseTextFormat<automl_zero::SearchExperimentSpec>(spec);
  std::mt19937 bit_gen(seed);
  RandomGenerator rand_gen(&bit_gen);
  Generator generator(experiment.initial_population(), experiment.setup_size_init(),
                      experiment.predict_size_init(), experiment.learn_size_init(),
                      automl_zero::ExtractOps(experiment.setup_ops()),
                      automl_zero::ExtractOps(experiment.predict_ops()),
                      automl_zero::ExtractOps(experiment.learn_ops()), &bit_gen, &rand_gen);
  std::unique_ptr<automl_zero::TrainBudget> train_budget;
  if (experiment.has_train_budget()) {
    train_budget = automl_zero::BuildTrainBudget(experiment.train_budget(), &generator);
  }
  automl_zero::Mutator mutator(
      experiment.allowed_mutation_types(), experiment.mutate_prob(),
      automl_zero::ExtractOps(experiment.setup_ops()),
      automl_zero::ExtractOps(experiment.predict_ops()),
      automl_zero::ExtractOps(experiment.learn_ops()), experiment.mutate_setup_size_min(),
      experiment.mutate_setup_size_max(), experiment.mutate_predict_size_min(),
      experiment.mutate_predict_size_max(), experiment.mutate_learn_size_min(),
      experiment.mutate_learn_size_max(), &bit_gen, &rand_gen);
  if (randomize_task_seeds) {  // as run_search_experiment --randomize_task_seeds
    automl_zero::RandomizeTaskSeeds(experiment.mutable_search_tasks(),
                                    rand_gen.UniformRandomSeed());
  }
  std::unique_ptr<automl_zero::FECCache> cache =
      experiment.has_fec() ? std::make_unique<automl_zero::FECCache>(experiment.fec())
                           : nullptr;
  Evaluator evaluator(experiment.fitness_combination_mode(), experiment.search_tasks(),
                      &rand_gen, cache.get(), train_budget.get(),
                      experiment.max_abs_error());
  automl_zero::RegularizedEvolution evolution(
      &rand_gen, experiment.population_size(), experiment.tournament_size(),
      experiment.progress_every(), &generator, &evaluator, &mutator);
  evolution.Init();
  while (evolution.NumIndividuals() < individuals) {
    evolution.Run(1, automl_zero::kUnlimitedTime);  // one generation
  }
  const double cpu = CpuSeconds() - start;
  double best = 0.0;
  evolution.GetBest(&best);
  const long done = static_cast<long>(evolution.NumIndividuals());
  std::printf("individuals=%ld cpu_s=%.4f per_s=%.1f fitness=%.6f\n", done, cpu, done / cpu,
              best);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "eval" && argc == 9) {
    return Eval(argv[2], argv[3], std::atoi(argv[4]), std::atoi(argv[5]), std::atoi(argv[6]),
                std::atoi(argv[7]), std::atof(argv[8]));
  }
  if (mode == "eval_file" && argc == 5) {
    return EvalFile(argv[2], argv[3], std::atof(argv[4]));
  }
  if (mode == "search" && argc == 5) {
    return Search(DemoSpec(std::atoi(argv[2]) != 0), true, std::atol(argv[3]),
                  static_cast<unsigned>(std::atol(argv[4])));
  }
  if (mode == "nonlinear" && argc == 4) {
    return Search(kNonlinearSpec, false, std::atol(argv[2]),
                  static_cast<unsigned>(std::atol(argv[3])));
  }
  std::fprintf(stderr,
               "usage: %s eval linear|neural_net linear|nonlinear TASKS TRAIN VALID F SECONDS\n"
               "       %s eval_file linear|neural_net PATH SECONDS\n"
               "       %s search FEC INDIVIDUALS SEED\n"
               "       %s nonlinear INDIVIDUALS SEED\n",
               argv[0], argv[0], argv[0], argv[0]);
  return 2;
}
