// A user's program: built by the add_subdirectory, find_package and pkg-config consumer tests.
#include <eigenformer/core/random.hpp>
#include <eigenformer/core/tensor.hpp>

#include <iostream>

int main() {
  const eigenformer::Tensor<float> x = eigenformer::random_tensor<float>(eigenformer::Shape{2, 3, 4}, /*seed=*/1);
  std::cout << "consumer: tensor of shape " << x.shape().str() << "\n";
  return x.size() == 24 ? 0 : 1;
}
