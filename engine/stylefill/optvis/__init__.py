"""Image optimisation in small composable pieces (as Lucent's optvis): objectives, image
parameterisations, transforms, regularisers, the natural-patch prior and the render loop."""
